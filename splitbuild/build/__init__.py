"""Local split builds: the CI plan run on one machine (``splitbuild build``).

Typed API::

    options = options_from_config("splitbuild.toml", outputs=["oci:./build/oci"], tags=["dev"])
    async with Client() as client:
        result = await run_build(client, await select_builder("auto"), options)
    result.index, [leg.digest for leg in result.legs]

(or ``BuildOptions(spec=..., platforms=[...], outputs=[...], tags=[...], host=detect_host())``).

Modules: :mod:`~splitbuild.build.host` (what runs natively), :mod:`~splitbuild.build.binfmt`
(QEMU through binfmt_misc), :mod:`~splitbuild.build.builders` (the builder interface; buildah and
docker buildx in their own modules, :mod:`~splitbuild.build.selection` picks one),
:mod:`~splitbuild.build.runner` (jobs, timing, push by digest, merge),
:mod:`~splitbuild.build.smoke` and :mod:`~splitbuild.build.scan` (the ``[test]`` and ``[scan]``
checks each platform passes before its push),
:mod:`~splitbuild.build.options` (the options from a config file), :mod:`~splitbuild.build.gitcontext`
and :mod:`~splitbuild.build.tagging` (tags from the config's rules and the local git state).
"""

from __future__ import annotations

from splitbuild.build.binfmt import check_emulation
from splitbuild.build.builders import Builder
from splitbuild.build.gitcontext import GitState, git_context, git_state
from splitbuild.build.host import Host, detect_host
from splitbuild.build.options import config_annotations, options_from_config, select_platforms
from splitbuild.build.report import render_table
from splitbuild.build.runner import BuildFailed, BuildOptions, BuildResult, LegResult, ScanRefused, run_build
from splitbuild.build.scan import ScanFindings, Scanner, find_scanner
from splitbuild.build.selection import select_builder
from splitbuild.build.smoke import SmokeTester, find_tester
from splitbuild.build.spec import BuildSpec, spec_from_config
from splitbuild.build.tagging import build_labels, default_tags, explicit_tags

__all__ = [
    "BuildFailed",
    "BuildOptions",
    "BuildResult",
    "BuildSpec",
    "Builder",
    "GitState",
    "Host",
    "LegResult",
    "ScanFindings",
    "ScanRefused",
    "Scanner",
    "SmokeTester",
    "build_labels",
    "check_emulation",
    "config_annotations",
    "default_tags",
    "detect_host",
    "explicit_tags",
    "find_scanner",
    "find_tester",
    "git_context",
    "git_state",
    "options_from_config",
    "render_table",
    "run_build",
    "select_builder",
    "select_platforms",
    "spec_from_config",
]
