"""``splitbuild init``, ``plan``, ``generate`` and ``pins``: from config to CI workflow."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from splitbuild.cli._common import DEFAULT_CONFIG, ConfigOpt, handle_errors, print_json

if TYPE_CHECKING:
    from splitbuild.config import Config
    from splitbuild.workflow.files import GeneratedFile

# Not _common.JsonOpt: these commands' --help has always said "Print JSON.".
PrintJsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
CiOpt = Annotated[
    str | None,
    typer.Option(
        "--ci", metavar="github|gitlab|forgejo", help="CI system (default: [ci] provider of the config)."
    ),
]


def _posix(path: Path) -> str:
    return path.as_posix()


def _provider(ci: str | None) -> str | None:
    from splitbuild.errors import UsageError
    from splitbuild.runners import PROVIDERS

    if ci is not None and ci not in PROVIDERS:
        raise UsageError(f"--ci {ci!r}: must be one of {', '.join(PROVIDERS)}")
    return ci


def init_command(
    path: Annotated[
        Path, typer.Option("--path", help="Where to write the config.", dir_okay=False)
    ] = DEFAULT_CONFIG,
    image: Annotated[
        str | None, typer.Option("--image", help="Image name (default: from the git remote).")
    ] = None,
    platforms: Annotated[
        str, typer.Option("--platform", help="Comma-separated platforms.")
    ] = "linux/amd64,linux/arm64",
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    ci: CiOpt = None,
) -> None:
    """Write a commented starter splitbuild.toml (Dockerfile, image name and, for a GitLab.com
    remote, the GitLab provider detected)."""
    with handle_errors():
        from splitbuild.errors import Refused
        from splitbuild.platforms import normalize_platform
        from splitbuild.workflow import starter

        if path.exists() and not force:
            raise Refused(f"{path} already exists; not overwriting it", hint="use --force to overwrite it")
        root = path.resolve().parent
        wanted = [normalize_platform(p) for p in platforms.split(",") if p.strip()]
        detected = None if image else starter.image_from_remote(starter.git_remote_url(root) or "")
        name = image or detected or starter.PLACEHOLDER_IMAGE
        found = starter.detect_dockerfile(root)
        context, dockerfile = starter.detect_build(root)
        provider = _provider(ci) or ("gitlab" if name.startswith("registry.gitlab.com/") else "github")
        text = starter.starter_config(
            image=name, dockerfile=dockerfile, platforms=wanted, context=context, provider=provider
        )
        path.write_text(text, "utf-8")
        sys.stderr.write(f"wrote {path} (image {name}, dockerfile {found or 'not found'})\n")
        if name == starter.PLACEHOLDER_IMAGE:
            sys.stderr.write(f"warning: no GitHub remote found; set image.names in {path}\n")
        if found is None:
            sys.stderr.write(f"warning: no Dockerfile found; set image.dockerfile in {path}\n")


def plan_command(
    config: ConfigOpt = DEFAULT_CONFIG, json_output: PrintJsonOpt = False, ci: CiOpt = None
) -> None:
    """Show which runner builds each platform, natively or under QEMU, and why; then what the
    index carries besides the platform images (attestations) and who signs or attests it."""
    with handle_errors():
        from splitbuild.config import load_config
        from splitbuild.planner import plan

        the_plan = plan(load_config(config, provider=_provider(ci)))
        if json_output:
            print_json(
                {
                    "provider": the_plan.provider,
                    "legs": [
                        {**leg.model_dump(mode="json"), "output": leg.output_key, "qemu": leg.qemu_arch}
                        for leg in the_plan.legs
                    ],
                    "notes": list(the_plan.notes),
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
        for note in the_plan.notes:
            sys.stdout.write(f"note: {note}\n")


def generate_command(
    config: ConfigOpt = DEFAULT_CONFIG,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="The file to write (default: .github/workflows/splitbuild.yml, .gitlab-ci.yml "
            "or .forgejo/workflows/splitbuild.yml).",
            dir_okay=False,
        ),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 10 with a diff if the file is out of date.")
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
    ci: CiOpt = None,
) -> None:
    """Write the CI workflow (GitHub Actions, GitLab CI or Forgejo Actions) for the config
    (deterministic; --check for CI)."""
    with handle_errors():
        from splitbuild.config import declared_provider, load_config
        from splitbuild.planner import plan
        from splitbuild.workflow.files import generated_files
        from splitbuild.workflow.header import DEFAULT_OUTPUTS, regenerate_command

        loaded = load_config(config, provider=_provider(ci))
        provider = loaded.ci.provider
        ci_flag = ci is not None and ci != declared_provider(config)
        path = output if output is not None else Path(DEFAULT_OUTPUTS[provider])
        # The default outputs belong at the top of the config's repository, wherever the command
        # runs from; an explicit --output is relative to here.
        here = Path.cwd()
        top = here if output is not None else _repository_top(config)

        def shown(generated: Path) -> str:
            return _shown(generated, top, here)

        config_path = _relative_to(config, top)
        lint_path = actionlint_config
        if lint_path is not None and not lint_path.is_absolute():
            lint_path = _relative_to(lint_path, top)
        with _working_directory(top):
            files = generated_files(
                loaded,
                plan(loaded),
                config_path=config_path,
                output_path=path,
                actionlint_config=lint_path,
                ci_flag=ci_flag,
            )
            stale = _write_or_diff(files, check=check, shown=shown)
        if not check:
            _print_settings(loaded)
        if stale:
            from splitbuild.errors import OutOfDate

            raise OutOfDate(
                f"{', '.join(stale)} out of date with {_posix(config)}",
                hint="run: " + regenerate_command(_posix(config), _posix(path), provider, ci_flag=ci_flag),
            )


def _print_settings(loaded: Config) -> None:
    """Tell what the workflow reads that must be created in the CI system (stderr)."""
    from splitbuild.workflow.settings import needed_settings

    provider = loaded.ci.provider
    settings = needed_settings(loaded)
    where = {
        "github": "repository settings > Secrets and variables > Actions",
        "forgejo": "repository settings > Actions > Secrets / Variables",
        "gitlab": "project settings > CI/CD > Variables (mask the secrets)",
    }[provider]
    environment = loaded.ci.environment
    if environment is not None and provider == "github":
        if loaded.ci.previews:
            # The preview jobs run in no deployment environment (pull request refs do not pass its
            # protection rules), so they see repository secrets and variables only.
            where = (
                f"the {where} (repository secrets and variables, not environment ones: the preview "
                f"jobs of [ci] previews run outside the deployment environment {environment!r})"
            )
        else:
            where = f"the deployment environment {environment!r} (create it), or the {where}"
    if not settings:
        sys.stderr.write("the workflow needs no secrets or variables beyond what the runner provides\n")
        return
    sys.stderr.write(f"the workflow reads these; create them in {where}:\n")
    for setting in settings:
        kind = "variable" if provider == "gitlab" and setting.kind == "variable" else setting.kind
        label = f"CI/CD {kind}" if provider == "gitlab" else kind
        sys.stderr.write(f"  {label:<16} {setting.name:<24} {setting.why}\n")


def _repository_top(config: Path) -> Path:
    from splitbuild.config import repository_top

    return repository_top(config)


def _same_directory(one: Path, other: Path) -> bool:
    return one.resolve() == other.resolve()


@contextmanager
def _working_directory(directory: Path) -> Iterator[None]:
    """Run the block in ``directory``; the current directory is restored afterwards."""
    here = Path.cwd()
    if _same_directory(directory, here):
        yield
        return
    os.chdir(directory)
    try:
        yield
    finally:
        os.chdir(here)


def _relative_to(path: Path, top: Path) -> Path:
    """``path`` (absolute or relative to the current directory) relative to ``top`` instead,
    unchanged when ``top`` is the current directory: what the generated files name, so that they
    read the same whichever directory ``generate`` ran from."""
    if _same_directory(top, Path.cwd()):
        return path
    return Path(os.path.relpath(path.absolute().parent.resolve(), top.resolve())) / path.name


def _shown(path: Path, top: Path, here: Path) -> str:
    """``path`` (relative to ``top``) as the user, in ``here``, names it."""
    if path.is_absolute() or _same_directory(top, here):
        return _posix(path)
    return Path(os.path.relpath(top.resolve() / path, here.resolve())).as_posix()


def _write_or_diff(
    files: list[GeneratedFile], *, check: bool, shown: Callable[[Path], str] = _posix
) -> list[str]:
    """Write each file that changed, or with ``check`` print a diff; the stale paths, as
    ``shown`` names them (as do the diff and the messages)."""
    import difflib

    from splitbuild.workflow.files import existing_text

    stale: list[str] = []
    for file in files:
        path, content = file.path, file.text
        current = existing_text(path)
        if current == content:
            continue
        if check:
            stale.append(shown(path))
            diff = difflib.unified_diff(
                (current or "").splitlines(keepends=True),
                content.splitlines(keepends=True),
                fromfile=f"{shown(path)} (on disk)",
                tofile=f"{shown(path)} (generated)",
            )
            sys.stdout.writelines(diff)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, "utf-8")
            sys.stderr.write(f"wrote {shown(path)}\n")
    return stale


def pins_command(
    config: ConfigOpt = DEFAULT_CONFIG,
    all_pins: Annotated[
        bool, typer.Option("--all", help="Every pin splitbuild knows, not only those in use.")
    ] = False,
    json_output: PrintJsonOpt = False,
) -> None:
    """List the pinned actions (commit SHA and release tag) the generated workflow uses."""
    with handle_errors():
        from splitbuild.workflow.pins import all_pins as known_pins

        if all_pins:
            pins = list(known_pins().values())
        else:
            from splitbuild.config import load_config
            from splitbuild.errors import UsageError
            from splitbuild.planner import plan
            from splitbuild.workflow.github import build_workflow

            loaded = load_config(config)
            if loaded.ci.provider == "gitlab":
                raise UsageError(
                    "the GitLab pipeline uses no actions; its images are set in [ci.gitlab]",
                    hint="splitbuild pins --all lists the actions of the GitHub and Forgejo workflows",
                )
            pins = build_workflow(loaded, plan(loaded)).pins()
        if json_output:
            print_json([p.model_dump(mode="json") for p in pins])
            return
        width = max(len(p.action) for p in pins)
        for p in pins:
            sys.stdout.write(f"{p.action:<{width}}  {p.tag:<8}  {p.sha}\n")


def register(app: typer.Typer) -> None:
    app.command("init", short_help="Write a commented starter splitbuild.toml.")(init_command)
    app.command("plan", short_help="Show which runner builds each platform, native or QEMU.")(plan_command)
    app.command("generate", short_help="Write the CI workflow (GitHub, GitLab or Forgejo).")(generate_command)
    app.command("pins", short_help="List the pinned actions behind the generated workflow.")(pins_command)
