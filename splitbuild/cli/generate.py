"""``splitbuild init``, ``plan``, ``generate`` and ``pins``: from config to CI workflow."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from splitbuild.cli._common import fail, handle_errors, print_json

ConfigOpt = Annotated[
    Path, typer.Option("--config", "-c", help="The config file.", dir_okay=False, show_default=True)
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
_DEFAULT_CONFIG = Path("splitbuild.toml")


def _posix(path: Path) -> str:
    return path.as_posix()


def init_command(
    path: Annotated[
        Path, typer.Option("--path", help="Where to write the config.", dir_okay=False)
    ] = _DEFAULT_CONFIG,
    image: Annotated[
        str | None, typer.Option("--image", help="Image name (default: from the git remote).")
    ] = None,
    platforms: Annotated[
        str, typer.Option("--platform", help="Comma-separated platforms.")
    ] = "linux/amd64,linux/arm64",
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter splitbuild.toml (Dockerfile and image name detected)."""
    with handle_errors():
        from splitbuild.errors import UsageError
        from splitbuild.planner import normalize_platform
        from splitbuild.workflow import starter

        if path.exists() and not force:
            raise UsageError(f"{path} already exists", hint="use --force to overwrite it")
        root = path.resolve().parent
        wanted = [normalize_platform(p) for p in platforms.split(",") if p.strip()]
        detected = None if image else starter.image_from_remote(starter.git_remote_url(root) or "")
        name = image or detected or starter.PLACEHOLDER_IMAGE
        dockerfile = starter.detect_dockerfile(root)
        path.write_text(starter.starter_config(image=name, dockerfile=dockerfile, platforms=wanted), "utf-8")
        sys.stderr.write(f"wrote {path} (image {name}, dockerfile {dockerfile or 'not found'})\n")
        if name == starter.PLACEHOLDER_IMAGE:
            sys.stderr.write(f"warning: no GitHub remote found; set image.names in {path}\n")
        if dockerfile is None:
            sys.stderr.write(f"warning: no Dockerfile found; set image.dockerfile in {path}\n")


def plan_command(config: ConfigOpt = _DEFAULT_CONFIG, json_output: JsonOpt = False) -> None:
    """Show which runner builds each platform, natively or under QEMU, and why."""
    with handle_errors():
        from splitbuild.config import load_config
        from splitbuild.planner import plan

        the_plan = plan(load_config(config))
        if json_output:
            print_json(
                {
                    "provider": the_plan.provider,
                    "legs": [
                        {**leg.model_dump(mode="json"), "output": leg.output_key, "qemu": leg.qemu_arch}
                        for leg in the_plan.legs
                    ],
                }
            )
            return
        rows = [("PLATFORM", "RUNNER", "MODE", "WHY")]
        rows += [(leg.platform, ", ".join(leg.runner), leg.mode, leg.reason) for leg in the_plan.legs]
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        for row in rows:
            sys.stdout.write(
                "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + f"  {row[3]}\n"
            )
        for leg in the_plan.legs:
            for note in leg.notes:
                sys.stdout.write(f"note: {leg.platform}: {note}\n")


def generate_command(
    config: ConfigOpt = _DEFAULT_CONFIG,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="The workflow file to write.", dir_okay=False)
    ] = Path(".github/workflows/splitbuild.yml"),
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 with a diff if the file is out of date.")
    ] = False,
    actionlint_config: Annotated[
        Path | None,
        typer.Option(
            "--actionlint-config",
            help="Where to list runner labels actionlint does not know "
            "(default: .github/actionlint.yaml beside .github/workflows/).",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Write the GitHub Actions workflow for the config (deterministic; --check for CI)."""
    with handle_errors():
        import difflib

        from splitbuild.config import load_config
        from splitbuild.planner import plan
        from splitbuild.workflow import actionlint
        from splitbuild.workflow.github import render_workflow

        loaded = load_config(config)
        the_plan = plan(loaded)
        text = render_workflow(loaded, the_plan, config_path=_posix(config), output_path=_posix(output))
        files: list[tuple[Path, str]] = [(output, text)]
        labels = actionlint.unknown_runner_labels(loaded, the_plan)
        if labels:
            lint_path = actionlint_config or actionlint.actionlint_config_path(output)
            existing = lint_path.read_text("utf-8") if lint_path.is_file() else None
            if actionlint.owns_actionlint_config(existing, labels, lint_path):
                files.append((lint_path, actionlint.render_actionlint_config(labels, output.name)))
        stale: list[Path] = []
        for path, content in files:
            current = path.read_text("utf-8") if path.is_file() else None
            if current == content:
                continue
            if check:
                stale.append(path)
                diff = difflib.unified_diff(
                    (current or "").splitlines(keepends=True),
                    content.splitlines(keepends=True),
                    fromfile=f"{_posix(path)} (on disk)",
                    tofile=f"{_posix(path)} (generated)",
                )
                sys.stdout.writelines(diff)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(content, "utf-8")
                sys.stderr.write(f"wrote {_posix(path)}\n")
        if stale:
            from splitbuild.workflow.github import regenerate_command

            fail(
                f"{', '.join(_posix(p) for p in stale)} out of date with {_posix(config)}",
                1,
                hint=f"run: {regenerate_command(_posix(config), _posix(output))}",
            )


def pins_command(
    config: ConfigOpt = _DEFAULT_CONFIG,
    all_pins: Annotated[
        bool, typer.Option("--all", help="Every pin splitbuild knows, not only those in use.")
    ] = False,
    json_output: JsonOpt = False,
) -> None:
    """List the pinned actions (commit SHA and release tag) the generated workflow uses."""
    with handle_errors():
        from splitbuild.workflow.pins import all_pins as known_pins

        if all_pins:
            pins = list(known_pins().values())
        else:
            from splitbuild.config import load_config
            from splitbuild.planner import plan
            from splitbuild.workflow.github import build_workflow

            loaded = load_config(config)
            pins = build_workflow(loaded, plan(loaded)).pins()
        if json_output:
            print_json([p.model_dump(mode="json") for p in pins])
            return
        width = max(len(p.action) for p in pins)
        for p in pins:
            sys.stdout.write(f"{p.action:<{width}}  {p.tag:<8}  {p.sha}\n")


def register(app: typer.Typer) -> None:
    app.command("init")(init_command)
    app.command("plan")(plan_command)
    app.command("generate")(generate_command)
    app.command("pins")(pins_command)
