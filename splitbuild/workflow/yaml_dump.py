"""Dump workflow data as YAML: block style, keys in model order, sequences indented under their
key, multi-line strings as literal blocks, and trailing comments where the data asks for them.

PyYAML cannot write comments, so the dumper is extended at two points: the serializer tags the
scalar event of a :class:`Commented` value with its comment, and the emitter writes that comment
after the scalar (``uses: owner/action@sha # v1.2.3``, ``packages: write # why``).

Strings are quoted by PyYAML, never pasted: a string holding ``\n`` (and nothing else
:func:`~splitbuild.textline.line_fault` refuses) is a literal block, any other string holding such a
character is double-quoted with escapes, which YAML 1.1 and 1.2 readers read back the same (PyYAML
would write U+0085 or U+2028 raw, which 1.1 readers take as line breaks and 1.2 readers do not).
A comment is written raw, so it must be one line of text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from yaml.events import ScalarEvent
from yaml.nodes import Node, ScalarNode

from splitbuild.textline import line_fault

__all__ = ["Commented", "dump_yaml"]

_WIDTH = 4096
_STR = "tag:yaml.org,2002:str"


@dataclass(frozen=True)
class Commented:
    """A string value written with a trailing ``# comment``."""

    value: str
    comment: str


class _CommentedScalar(ScalarEvent):
    comment: str


class _Dumper(yaml.SafeDumper):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.node_comments: dict[int, str] = {}

    def serialize_node(self, node: Node, parent: Node | None, index: Any) -> None:
        comment = self.node_comments.get(id(node))
        if comment is None or not isinstance(node, ScalarNode):
            super().serialize_node(node, parent, index)
            return
        detected = self.resolve(ScalarNode, node.value, (True, False))  # type: ignore[no-untyped-call]
        default = self.resolve(ScalarNode, node.value, (False, True))  # type: ignore[no-untyped-call]
        event = _CommentedScalar(
            None, node.tag, (node.tag == detected, node.tag == default), node.value, style=node.style
        )
        event.comment = comment
        self.emit(event)

    def process_scalar(self) -> None:
        super().process_scalar()
        if isinstance(self.event, _CommentedScalar):
            self.write_indicator(f"# {self.event.comment}", True)

    def ignore_aliases(self, data: Any) -> bool:
        return True

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        # Indent sequences under their key, as GitHub's own examples do.
        super().increase_indent(flow, False)


def _represent_commented(dumper: _Dumper, data: Commented) -> Node:
    if line_fault(data.comment) is not None or line_fault(data.value) is not None:
        raise ValueError("a commented value and its comment must be single lines")
    node = dumper.represent_scalar(_STR, data.value)
    dumper.node_comments[id(node)] = data.comment
    return node


def _represent_str(dumper: _Dumper, data: str) -> Node:
    if line_fault(data) is None:
        return dumper.represent_scalar(_STR, data)
    if line_fault(data.replace("\n", "")) is None:
        return dumper.represent_scalar(_STR, data, style="|")
    return dumper.represent_scalar(_STR, data, style='"')


_Dumper.add_representer(Commented, _represent_commented)
_Dumper.add_representer(str, _represent_str)


def dump_yaml(data: Any) -> str:
    """YAML text for ``data``: dicts, lists, scalars and :class:`Commented` values."""
    text: str = yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=_WIDTH,
        indent=2,
    )
    return text
