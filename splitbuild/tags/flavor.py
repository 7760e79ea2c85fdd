"""``flavor`` entries: ``latest=auto|true|false``, ``prefix=``/``suffix=`` with ``onlatest=``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from splitbuild.errors import ConfigError
from splitbuild.tags.csvparse import CsvError, parse_record

__all__ = ["Flavor", "parse_flavor", "parse_flavor_lines"]

LatestMode = Literal["auto", "true", "false"]


@dataclass(frozen=True)
class Flavor:
    latest: LatestMode = "auto"
    prefix: str = ""
    prefixLatest: bool = False  # the names of metadata-action's flavor object
    suffix: str = ""
    suffixLatest: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fail(line: str, reason: str) -> ConfigError:
    return ConfigError(f"invalid flavor entry {line!r}: {reason}")


def _apply_line(flavor: Flavor, line: str) -> Flavor:
    try:
        fields = parse_record(line)
    except CsvError as exc:
        raise _fail(line, f"not a valid CSV record ({exc})") from None
    values: dict[str, Any] = flavor.as_dict()
    onlatest_for = ""
    for text in fields:
        parts = [part.strip() for part in text.split("=")]
        if len(parts) == 1:
            raise _fail(line, f"{text.strip()!r} is not key=value")
        key, value = parts[0].lower(), parts[1]
        if key == "latest":
            if value not in ("auto", "true", "false"):
                raise _fail(line, f"latest must be auto, true or false, not {value!r}")
            values["latest"] = value
        elif key in ("prefix", "suffix"):
            values[key] = value
            onlatest_for = key
        elif key == "onlatest":
            if value not in ("true", "false"):
                raise _fail(line, f"onlatest must be true or false, not {value!r}")
            if onlatest_for:
                values[f"{onlatest_for}Latest"] = value == "true"
        else:
            raise _fail(line, f"unknown key {key!r} (expected latest, prefix, suffix or onlatest)")
    return Flavor(**values)


def parse_flavor_lines(lines: Sequence[str]) -> Flavor:
    """Apply the entries in order; later entries override earlier ones."""
    flavor = Flavor()
    for line in lines:
        flavor = _apply_line(flavor, line)
    return flavor


def parse_flavor(lines: Sequence[str]) -> dict[str, Any]:
    """:func:`parse_flavor_lines` as plain data (the conformance checker's ``parse_flavor``)."""
    return parse_flavor_lines(lines).as_dict()
