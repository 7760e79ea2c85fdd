"""The ``splitbuild merge`` command the generated merge job runs, as data.

Every value reaches the script through an environment variable (``"$NAME"`` in the script, the
value in the step's ``env:``), so nothing from the config or from other jobs is ever expanded
inside the script text. :meth:`MergeCommand.argv` gives the exact argument vector the step runs for
given digests, for tests and for trying the command locally with ``--dry-run``.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from splitbuild.config import Config
from splitbuild.errors import ConfigError
from splitbuild.planner import Plan
from splitbuild.planner import plan as make_plan
from splitbuild.platforms import normalize_platform

__all__ = ["EnvRef", "MergeCommand", "merge_argv", "merge_command"]

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class EnvRef:
    """An argument whose value comes from the environment variable ``name``; an ``optional`` one
    is left out when the variable is empty (the digest of an optional platform's failed leg)."""

    name: str
    optional: bool = False

    def word(self) -> str:
        """The shell word: ``"$NAME"``, or ``${NAME:+"$NAME"}`` (no word at all when empty)."""
        return f'${{{self.name}:+"${self.name}"}}' if self.optional else f'"${self.name}"'


Arg = str | EnvRef


@dataclass(frozen=True)
class MergeCommand:
    """``splitbuild merge ...``: the arguments, the static values behind them, and which
    environment variable carries each platform's digest."""

    args: tuple[Arg, ...]
    env: Mapping[str, str]
    digest_env: Mapping[str, str]
    switches: tuple[str, ...] = ()
    """Options without a value from the config (``--allow-rollback``, ``--delete-displaced``)."""
    optional: tuple[str, ...] = ()
    """Optional platforms: their digests may be missing (the merge leaves them out)."""

    def script(self, *, flags: Sequence[str] = ()) -> str:
        """The shell script (POSIX ``sh``) of the merge step: a check per digest, then the
        command; ``flags`` (options without a value, such as ``--json``) follow ``merge``."""
        lines = [
            f': "${{{name}:?the {platform} build job produced no digest}}"'
            for platform, name in self.digest_env.items()
            if platform not in self.optional
        ]
        words = [a.word() if isinstance(a, EnvRef) else shlex.quote(a) for a in self.args]
        groups: list[str] = []
        index = 1
        while index < len(words):
            if words[index].startswith("--"):  # every option here takes one value
                groups.append(f"{words[index]} {words[index + 1]}")
                index += 2
            else:
                groups.append(words[index])
                index += 1
        first = " ".join(["splitbuild", words[0], *(shlex.quote(flag) for flag in (*flags, *self.switches))])
        command = first + "".join(f" \\\n  {group}" for group in groups)
        lines.append(command)
        return "\n".join(lines) + "\n"

    def renamed(self, prefix: str) -> MergeCommand:
        """The same command with every environment variable name prefixed (``IMAGE_1`` ->
        ``SPLITBUILD_IMAGE_1``), for CI systems where short names could clash with the project's."""
        args = tuple(EnvRef(prefix + a.name, a.optional) if isinstance(a, EnvRef) else a for a in self.args)
        env = {prefix + name: value for name, value in self.env.items()}
        digest_env = {platform: prefix + name for platform, name in self.digest_env.items()}
        return MergeCommand(
            args=args, env=env, digest_env=digest_env, switches=self.switches, optional=self.optional
        )

    def argv(self, digests: Mapping[str, str]) -> list[str]:
        """The argument vector (``splitbuild`` first) for the given ``platform -> digest`` map
        (which may lack optional platforms, as when their legs failed)."""
        by_platform = {normalize_platform(p): d for p, d in digests.items()}
        missing = sorted(set(self.digest_env) - set(by_platform) - set(self.optional))
        extra = sorted(set(by_platform) - set(self.digest_env))
        if missing or extra:
            raise ConfigError(
                f"digests must cover the planned platforms (missing: {', '.join(missing) or '-'}; "
                f"not planned: {', '.join(extra) or '-'})"
            )
        values = dict(self.env)
        for platform, name in self.digest_env.items():
            if platform not in by_platform:
                continue
            digest = by_platform[platform]
            if not _DIGEST.match(digest):
                raise ConfigError(f"digest for {platform} is not sha256:<64 hex>: {digest!r}")
            values[name] = digest
        words = [values[a.name] if isinstance(a, EnvRef) else a for a in self.args if _given(a, values)]
        return ["splitbuild", words[0], *self.switches, *words[1:]]


def _given(arg: Arg, values: Mapping[str, str]) -> bool:
    return not isinstance(arg, EnvRef) or not arg.optional or bool(values.get(arg.name))


def _digest_env_name(platform: str) -> str:
    return "DIGEST_" + re.sub(r"[^A-Z0-9]", "_", platform.upper())


def merge_command(config: Config, plan: Plan | None = None) -> MergeCommand:
    """The merge command for ``config``: every image, the tag/flavor/label rules, the annotations,
    the required platforms (``--platform``) and the optional ones (``--optional-platform``), then
    one bare digest per platform (resolved in the first image); an optional platform's digest is
    left out of the command when its leg gave none."""
    the_plan = plan if plan is not None else make_plan(config)
    env: dict[str, str] = {}
    args: list[Arg] = ["merge"]
    for index, name in enumerate(config.image.names, start=1):
        env[f"IMAGE_{index}"] = name
        args += ["--image", EnvRef(f"IMAGE_{index}")]
    for option, var, rules in (
        ("--tags", "TAG_RULES", config.tags.rules),
        ("--flavor", "FLAVOR_RULES", config.tags.flavor),
        ("--labels", "LABEL_RULES", config.tags.labels),
    ):
        if rules:
            env[var] = "\n".join(rules)
            args += [option, EnvRef(var)]
    for index, annotation in enumerate(config.image.annotations, start=1):
        env[f"ANNOTATION_{index}"] = annotation
        args += ["--annotation", EnvRef(f"ANNOTATION_{index}")]
    optional = tuple(p for p in the_plan.platforms if p in config.image.optional_platforms)
    env["PLATFORMS"] = ",".join(p for p in the_plan.platforms if p not in optional)
    args += ["--platform", EnvRef("PLATFORMS")]
    if optional:
        env["OPTIONAL_PLATFORMS"] = ",".join(optional)
        args += ["--optional-platform", EnvRef("OPTIONAL_PLATFORMS")]
    digest_env = {leg.platform: _digest_env_name(leg.platform) for leg in the_plan.legs}
    args += [EnvRef(name, platform in optional) for platform, name in digest_env.items()]
    switches = [
        switch
        for switch, on in (
            ("--allow-rollback", config.image.allow_rollback),
            ("--delete-displaced", config.image.delete_displaced),
        )
        if on
    ]
    return MergeCommand(
        args=tuple(args), env=env, digest_env=digest_env, switches=tuple(switches), optional=optional
    )


def merge_argv(config: Config, digests: Mapping[str, str], plan: Plan | None = None) -> list[str]:
    """The argv the generated merge step runs when the build jobs produced ``digests``
    (``{"linux/amd64": "sha256:..."}``), ``splitbuild`` first."""
    return merge_command(config, plan).argv(digests)
