"""Which files ``generate`` writes for a config, with their text: the workflow (or pipeline) and,
for GitHub runners with labels actionlint does not know, the actionlint config that names them.

Reads the files it would replace (at most 4 MiB each, regular files only) to refuse overwriting a
GitLab file splitbuild did not write and to leave an actionlint config it does not own alone.
Writes nothing: the caller writes the files (or diffs them, for ``--check``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from splitbuild.config import Config
from splitbuild.errors import Refused
from splitbuild.planner import Plan

__all__ = ["GeneratedFile", "existing_text", "generated_files"]

EXISTING_MAX_BYTES = 4 << 20


@dataclass(frozen=True)
class GeneratedFile:
    path: Path
    text: str


def existing_text(path: Path) -> str | None:
    """The text of a file about to be replaced, None when there is none; anything but a regular
    file of at most 4 MiB (a FIFO, ``/dev/zero``, ``/proc/self/mem``) is invalid input."""
    from splitbuild.inputfile import read_text_file

    if not os.path.lexists(path):
        return None
    return read_text_file(path, limit=EXISTING_MAX_BYTES)


def generated_files(
    config: Config,
    plan: Plan,
    *,
    config_path: Path,
    output_path: Path,
    actionlint_config: Path | None = None,
    ci_flag: bool = False,
) -> list[GeneratedFile]:
    """The files the config generates for its provider, the workflow first. ``ci_flag``: the
    provider was chosen on the command line, not by the config (the header's regenerate command
    says so)."""
    config_text, output_text = config_path.as_posix(), output_path.as_posix()
    if config.ci.provider == "gitlab":
        from splitbuild.workflow.gitlab import render_pipeline
        from splitbuild.workflow.header import GENERATED_MARK

        current = existing_text(output_path)
        if current is not None and not current.startswith(GENERATED_MARK):
            raise Refused(
                f"{output_text} exists and was not written by splitbuild; not overwriting it",
                hint="write the split build to its own file (`output_path` .gitlab/splitbuild.yml) "
                "and include it: include: [{local: .gitlab/splitbuild.yml}]",
            )
        text = render_pipeline(
            config, plan, config_path=config_text, output_path=output_text, ci_flag=ci_flag
        )
        return [GeneratedFile(output_path, text)]
    from splitbuild.workflow import actionlint
    from splitbuild.workflow.github import render_workflow

    text = render_workflow(config, plan, config_path=config_text, output_path=output_text, ci_flag=ci_flag)
    files = [GeneratedFile(output_path, text)]
    labels = actionlint.unknown_runner_labels(config, plan) if config.ci.provider == "github" else ()
    if labels:
        lint_path = actionlint_config or actionlint.actionlint_config_path(output_path)
        if actionlint.owns_actionlint_config(existing_text(lint_path), labels, lint_path):
            files.append(
                GeneratedFile(lint_path, actionlint.render_actionlint_config(labels, output_path.name))
            )
    return files
