"""``images`` entries: ``name/app``, ``name=ghcr.io/org/app,enable=false``, or the legacy ``a,b`` list."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from splitbuild.errors import ConfigError
from splitbuild.tags.csvparse import CsvError, parse_record

__all__ = ["Image", "enabled_image_names", "parse_image_lines", "parse_images"]


@dataclass(frozen=True)
class Image:
    name: str
    enable: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "enable": self.enable}


def _fields(line: str) -> list[str]:
    try:
        return parse_record(line)
    except CsvError as exc:
        raise ConfigError(f"invalid image entry {line!r}: not a valid CSV record ({exc})") from None


def _legacy(lines: Sequence[str]) -> list[Image] | None:
    """One line whose fields all lack ``=``: every field is an image name."""
    if len(lines) != 1:
        return None
    fields = _fields(lines[0])
    if any("=" in text for text in fields):
        return None
    return [Image(text.strip()) for text in fields]


def _parse_line(line: str) -> Image:
    name = ""
    enable = True
    for text in _fields(line):
        parts = [part.strip() for part in text.split("=")]
        if len(parts) == 1:
            name = parts[0]
            continue
        key, value = parts[0].lower(), parts[1]
        if key == "name":
            name = value
        elif key == "enable":
            if value not in ("true", "false"):
                raise ConfigError(
                    f"invalid image entry {line!r}: enable must be true or false, not {value!r}"
                )
            enable = value == "true"
        else:
            raise ConfigError(
                f"invalid image entry {line!r}: unknown attribute {key!r} (expected name, enable)"
            )
    if not name:
        raise ConfigError(f"invalid image entry {line!r}: the image name is empty")
    return Image(name, enable)


def parse_image_lines(lines: Sequence[str]) -> list[Image]:
    legacy = _legacy(lines)
    if legacy is not None:
        return legacy
    return [_parse_line(line) for line in lines]


def enabled_image_names(images: Sequence[Image]) -> list[str]:
    """Names of the enabled images, lower-cased, in input order (metadata-action's only check)."""
    return [image.name.lower() for image in images if image.enable]


def parse_images(lines: Sequence[str]) -> list[dict[str, Any]]:
    """:func:`parse_image_lines` as plain data (the conformance checker's ``parse_images``)."""
    return [image.as_dict() for image in parse_image_lines(lines)]
