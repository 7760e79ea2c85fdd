"""A local build's options from a config file: platforms, outputs, tags, labels and annotations.

What ``splitbuild build`` runs, without the CLI: :func:`options_from_config` reads the config, the
git state of the directory holding it and this machine, and returns the :class:`BuildOptions` for
:func:`~splitbuild.build.runner.run_build`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from splitbuild.build.gitcontext import git_context, git_state
from splitbuild.build.host import detect_host
from splitbuild.build.runner import BuildOptions, Progress
from splitbuild.build.scan import find_scanner
from splitbuild.build.spec import parse_build_args, spec_from_config
from splitbuild.build.tagging import build_labels, default_tags, explicit_tags
from splitbuild.config import Config, ScanConfig, load_config
from splitbuild.errors import ConfigError
from splitbuild.index import Annotations, parse_annotation
from splitbuild.platforms import normalize_platform
from splitbuild.reference import AnyReference, parse_reference
from splitbuild.timestamps import format_rfc3339, parse_rfc3339

__all__ = ["config_annotations", "options_from_config", "select_platforms"]


def select_platforms(config: Config, wanted: Sequence[str] = ()) -> list[str]:
    """The platforms to build: ``wanted`` normalised (``linux/aarch64`` is ``linux/arm64``),
    duplicates dropped, each one of ``[image] platforms``; all of them when ``wanted`` is empty."""
    configured = config.image.platforms
    selected: list[str] = []
    for text in wanted:
        platform = normalize_platform(text)
        if platform not in configured:
            raise ConfigError(f"platform {text!r} is not in the plan ({', '.join(configured)})")
        if platform not in selected:
            selected.append(platform)
    return selected or list(configured)


def config_annotations(config: Config) -> Annotations:
    """The ``[image] annotations`` of ``config``, parsed."""
    annotations = Annotations()
    for text in config.image.annotations:
        parse_annotation(text, annotations)
    return annotations


def _with_created(annotations: Annotations, commit_date: str | None) -> Annotations:
    """The index's ``created`` is the commit's date unless the config sets it (orders the indexes)."""
    moment = parse_rfc3339(commit_date)
    if moment is not None:
        annotations.index.setdefault("org.opencontainers.image.created", format_rfc3339(moment))
    return annotations


def options_from_config(
    config_path: str | Path,
    *,
    outputs: Sequence[str | AnyReference],
    platforms: Sequence[str] = (),
    tags: Sequence[str] = (),
    build_args: Sequence[str] = (),
    jobs: int | None = None,
    allow_shrink: bool = False,
    allow_rollback: bool | None = None,
    delete_displaced: bool | None = None,
    scan: bool = False,
    on_progress: Progress | None = None,
    on_output: Callable[[str, str], None] | None = None,
) -> BuildOptions:
    """The build of the config at ``config_path`` on this machine.

    ``platforms`` is a subset of the config's (default: all, see :func:`select_platforms`);
    ``outputs`` are repositories (``oci:PATH`` or a registry repository, no tag); ``tags`` are tag
    names (default: the config's ``[tags]`` rules on the git state of the config's directory);
    ``build_args`` are ``KEY=VALUE`` texts overriding the config's; ``allow_rollback`` and
    ``delete_displaced`` default to the config's ``[image]`` keys. The build labels record the git
    source and revision; the config's annotations go on the index, with ``created`` the commit's date
    unless they set it. The config's ``[test]`` runs in every platform's image before it is
    pushed; with ``scan`` the ``[scan]`` scanner (trivy by default) reads it too, and a scanner
    that is not installed fails here, before anything is built.
    """
    path = Path(config_path)
    config = load_config(path)
    state = git_state(path.resolve().parent)
    root = state.root or Path.cwd()
    spec = spec_from_config(
        config, root, labels=build_labels(state), build_args=parse_build_args(list(build_args))
    )
    scanner = find_scanner(config.scan or ScanConfig(), root) if scan else None
    return BuildOptions(
        spec=spec,
        platforms=select_platforms(config, platforms),
        outputs=[parse_reference(out) if isinstance(out, str) else out for out in outputs],
        tags=explicit_tags(list(tags)) or default_tags(config, git_context(state), state),
        host=detect_host(),
        jobs=jobs,
        annotations=_with_created(config_annotations(config), state.commit_date),
        allow_shrink=allow_shrink,
        allow_rollback=config.image.allow_rollback if allow_rollback is None else allow_rollback,
        delete_displaced=config.image.delete_displaced if delete_displaced is None else delete_displaced,
        on_progress=on_progress,
        on_output=on_output,
        test=config.test,
        scanner=scanner,
    )
