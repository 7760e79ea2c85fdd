"""The part of Handlebars (4.7) that metadata-action expressions use, rendered the same way.

Supported: text, ``{{expr}}`` (HTML-escaped output), ``{{{expr}}}`` and ``{{&expr}}`` (raw output),
``\\{{`` escapes, comments, ``~`` whitespace control, paths (``a.b``, ``this``, ``[x]``, ``@root``),
helper calls with string/number/boolean/``null``/``undefined`` literals, path parameters,
sub-expressions and ``key=value`` hash arguments, and the built-in ``lookup`` and ``log`` helpers.
Block statements (``{{#if}}``, ``{{else}}``), partials, decorators and raw blocks are refused with a
:class:`TemplateError`. Lookups follow Handlebars' rules: a missing name renders as ``""``, a missing
helper called with arguments is an error, a helper found in the data is called as ``this`` helper.

Values are Python objects standing for JavaScript ones: ``None`` (``undefined``), ``bool``,
``int``/``float``, ``str``, ``list``, ``dict`` and :class:`Helper`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, TypeAlias

from splitbuild.tags.jsvalues import is_array_index, js_string, js_truthy

__all__ = ["Helper", "Scope", "Template", "TemplateError", "compile_template", "is_raw_statement", "render"]

Scope: TypeAlias = Mapping[str, Any]


class TemplateError(Exception):
    """A template that does not parse, or that fails while rendering (like Handlebars throwing)."""


@dataclass(frozen=True)
class Helper:
    """A function in the data. ``hash`` is ``None`` when Handlebars calls it without ``options``."""

    fn: Callable[[list[Any], dict[str, Any] | None], Any]

    def __call__(self, args: list[Any], hash_args: dict[str, Any] | None) -> Any:
        return self.fn(args, hash_args)


# --- syntax tree ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Path:
    parts: tuple[str, ...]
    original: str
    depth: int = 0
    data: bool = False

    @property
    def simple(self) -> bool:
        return len(self.parts) == 1 and not _SCOPED.match(self.original) and self.depth == 0


@dataclass(frozen=True)
class _Literal:
    value: Any
    original: str


@dataclass(frozen=True)
class _Call:
    path: _Path | _Literal
    params: tuple[_Expr, ...]
    hash: tuple[tuple[str, _Expr], ...] | None


@dataclass(frozen=True)
class _SubExpr:
    call: _Call


_Expr: TypeAlias = "_Path | _Literal | _SubExpr"


@dataclass
class _Content:
    original: str
    value: str


@dataclass(frozen=True)
class _Mustache:
    call: _Call
    escaped: bool
    strip_open: bool
    strip_close: bool


@dataclass(frozen=True)
class _Comment:
    strip_open: bool
    strip_close: bool


_Statement: TypeAlias = "_Content | _Mustache | _Comment"

# --- lexer -----------------------------------------------------------------------------------------

_SCOPED = re.compile(r"^\.|this\b")
_ID = r"""[^\s!"#%-,./;->@\[-\^`{-~]+(?=[=~}\s/.)|])"""
_LITERAL_END = r"(?=[~}\s)])"
_TOKENS: list[tuple[str, re.Pattern[str]]] = [
    ("OPEN_SEXPR", re.compile(r"\(")),
    ("CLOSE_SEXPR", re.compile(r"\)")),
    ("EQUALS", re.compile(r"=")),
    ("ID", re.compile(r"\.\.")),
    ("ID", re.compile(r"\.(?=[=~}\s/.)|])")),
    ("SEP", re.compile(r"[/.]")),
    ("SPACE", re.compile(r"\s+")),
    ("CLOSE_UNESCAPED", re.compile(r"\}~?\}\}")),
    ("CLOSE", re.compile(r"~?\}\}")),
    ("STRING", re.compile(r'"((?:\\"|[^"])*)"')),
    ("STRING", re.compile(r"'((?:\\'|[^'])*)'")),
    ("DATA", re.compile(r"@")),
    ("BOOLEAN", re.compile(r"(?:true|false)" + _LITERAL_END)),
    ("UNDEFINED", re.compile(r"undefined" + _LITERAL_END)),
    ("NULL", re.compile(r"null" + _LITERAL_END)),
    ("NUMBER", re.compile(r"-?[0-9]+(?:\.[0-9]+)?" + _LITERAL_END)),
    ("BLOCK_PARAMS", re.compile(r"as\s+\||\|")),
    ("ID", re.compile(_ID)),
    ("ID", re.compile(r"\[(?:\\\]|[^\]])*\]")),
]
_UNSUPPORTED_OPEN = [
    (re.compile(r"\{\{\{\{"), "raw blocks"),
    (re.compile(r"\{\{~?>"), "partials"),
    (re.compile(r"\{\{~?#>"), "partial blocks"),
    (re.compile(r"\{\{~?#"), "block helpers ({{#...}})"),
    (re.compile(r"\{\{~?/"), "block helpers ({{/...}})"),
    (re.compile(r"\{\{~?\^"), "inverse sections ({{^...}})"),
    (re.compile(r"\{\{~?\s*else"), "{{else}} sections"),
]
_COMMENT_LONG = re.compile(r"\{\{(~?)!--[\s\S]*?--(~?)\}\}")
_COMMENT = re.compile(r"\{\{(~?)![\s\S]*?(~?)\}\}")
_OPEN = re.compile(r"\{\{(~?)([{&*]?)")


def _next_token(src: str, pos: int) -> tuple[str, re.Match[str]]:
    for kind, pattern in _TOKENS:
        match = pattern.match(src, pos)
        if match:
            return kind, match
    if "}}" not in src[pos:]:
        raise TemplateError("unclosed '{{'")
    raise TemplateError(f"unexpected {src[pos]!r} at position {pos}")


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    pos: int


@dataclass
class _Parser:
    source: str
    statements: list[_Statement] = field(default_factory=list)

    def parse(self) -> list[_Statement]:
        src = self.source
        pos = 0
        while pos < len(src):
            start = src.find("{{", pos)
            if start < 0:
                self._content(src[pos:])
                break
            text = src[pos:start]
            if text.endswith("\\\\"):
                self._content(text[:-1])
            elif text.endswith("\\"):
                self._content(text[:-1])
                pos = self._escaped(start)
                continue
            else:
                self._content(text)
            pos = self._mustache(start)
        return self.statements

    def _content(self, text: str) -> None:
        if text:
            self.statements.append(_Content(text, text))

    def _escaped(self, start: int) -> int:
        """``\\{{`` : literal text up to the next mustache, escaped mustache or the end."""
        src = self.source
        end = len(src)
        nxt = src.find("{{", start + 2)
        if nxt >= 0:
            end = nxt
            for back in (2, 1):
                if nxt - back >= start + 2 and src[nxt - back : nxt] == "\\" * back:
                    end = nxt - back
                    break
        self._content(src[start:end])
        return end

    def _mustache(self, start: int) -> int:
        src = self.source
        for pattern, what in _UNSUPPORTED_OPEN:
            if pattern.match(src, start):
                raise TemplateError(f"{what} are not supported")
        comment = _COMMENT_LONG.match(src, start) or _COMMENT.match(src, start)
        if comment:
            self.statements.append(_Comment(comment.group(1) == "~", comment.group(2) == "~"))
            return comment.end()
        opener = _OPEN.match(src, start)
        assert opener is not None  # src[start:] begins with "{{"
        kind = opener.group(2)
        if kind == "*":
            raise TemplateError("decorators are not supported")
        tokens, end = self._tokens(opener.end())
        close = tokens.pop()
        if (kind == "{") != (close.kind == "CLOSE_UNESCAPED"):
            raise TemplateError(f"unbalanced braces at position {close.pos}")
        stream = _TokenStream(tokens)
        call = stream.call(close.pos)
        stream.expect_end()
        self.statements.append(
            _Mustache(
                call, escaped=kind == "", strip_open=opener.group(1) == "~", strip_close="~" in close.text
            )
        )
        return end

    def _tokens(self, pos: int) -> tuple[list[_Token], int]:
        src = self.source
        tokens: list[_Token] = []
        while pos < len(src):
            kind, match = _next_token(src, pos)
            if kind == "BLOCK_PARAMS":
                raise TemplateError("block parameters are not supported")
            if kind == "STRING":
                quote = match.group(0)[0]
                tokens.append(_Token(kind, match.group(1).replace("\\" + quote, quote), pos))
            elif kind != "SPACE":
                tokens.append(_Token(kind, match.group(0), pos))
            pos = match.end()
            if kind in ("CLOSE", "CLOSE_UNESCAPED"):
                return tokens, pos
        raise TemplateError("unclosed '{{'")


@dataclass
class _TokenStream:
    tokens: list[_Token]
    index: int = 0

    def peek(self, offset: int = 0) -> _Token | None:
        i = self.index + offset
        return self.tokens[i] if i < len(self.tokens) else None

    def take(self, where: int) -> _Token:
        token = self.peek()
        if token is None:
            raise TemplateError(f"incomplete expression at position {where}")
        self.index += 1
        return token

    def expect_end(self) -> None:
        token = self.peek()
        if token is not None:
            raise TemplateError(f"unexpected {token.text!r} at position {token.pos}")

    def call(self, where: int) -> _Call:
        path = self.helper_name(where)
        params: list[_Expr] = []
        pairs: list[tuple[str, _Expr]] = []
        while True:
            token = self.peek()
            if token is None or token.kind == "CLOSE_SEXPR":
                break
            following = self.peek(1)
            if token.kind == "ID" and following is not None and following.kind == "EQUALS":
                self.index += 2
                pairs.append((token.text, self.param(where)))
                continue
            if pairs:
                raise TemplateError(f"positional argument after key=value at position {token.pos}")
            params.append(self.param(where))
        return _Call(path, tuple(params), tuple(pairs) if pairs else None)

    def param(self, where: int) -> _Expr:
        token = self.peek()
        if token is not None and token.kind == "OPEN_SEXPR":
            self.index += 1
            call = self.call(where)
            closing = self.take(where)
            if closing.kind != "CLOSE_SEXPR":
                raise TemplateError(f"expected ')' at position {closing.pos}")
            return _SubExpr(call)
        return self.helper_name(where)

    def helper_name(self, where: int) -> _Path | _Literal:
        token = self.take(where)
        if token.kind == "STRING":
            return _Literal(token.text, token.text)
        if token.kind == "NUMBER":
            number = float(token.text)
            value: float | int = int(number) if number.is_integer() else number
            return _Literal(value, js_string(value))
        if token.kind == "BOOLEAN":
            return _Literal(token.text == "true", token.text)
        if token.kind == "UNDEFINED":
            return _Literal(None, token.text)
        if token.kind == "NULL":
            return _Literal(None, token.text)
        if token.kind == "DATA":
            return self.path(self.take(where), where, data=True)
        if token.kind == "ID":
            return self.path(token, where, data=False)
        raise TemplateError(f"unexpected {token.text!r} at position {token.pos}")

    def path(self, first: _Token, where: int, *, data: bool) -> _Path:
        if first.kind != "ID":
            raise TemplateError(f"unexpected {first.text!r} at position {first.pos}")
        segments = [("", first.text)]
        while (sep := self.peek()) is not None and sep.kind == "SEP":
            self.index += 1
            segment = self.take(where)
            if segment.kind != "ID":
                raise TemplateError(f"unexpected {segment.text!r} at position {segment.pos}")
            segments.append((sep.text, segment.text))
        original = "@" if data else ""
        parts: list[str] = []
        depth = 0
        for separator, text in segments:
            literal = text.startswith("[") and text.endswith("]")
            part = re.sub(r"\\([\\\]])", r"\1", text[1:-1]) if literal else text
            original += separator + part
            if not literal and part in ("..", ".", "this"):
                if parts:
                    raise TemplateError(f"invalid path {original!r}")
                if part == "..":
                    depth += 1
            else:
                parts.append(part)
        return _Path(tuple(parts), original, depth, data)


def _apply_whitespace_control(statements: list[_Statement]) -> None:
    """Handlebars' ``~`` stripping and standalone-comment line removal (``WhitespaceControl``)."""
    for i, statement in enumerate(statements):
        if isinstance(statement, _Content):
            continue
        if statement.strip_close:
            _omit(statements, i + 1, r"^\s+")
        if statement.strip_open:
            _omit(statements, i - 1, r"\s+$")
        if isinstance(statement, _Comment) and _prev_blank(statements, i) and _next_blank(statements, i):
            _omit(statements, i + 1, r"^[ \t]*\r?\n?")
            _omit(statements, i - 1, r"[ \t]+$")


def _omit(statements: list[_Statement], i: int, pattern: str) -> None:
    if 0 <= i < len(statements):
        node = statements[i]
        if isinstance(node, _Content):
            node.value = re.sub(pattern, "", node.value, count=1)


def _prev_blank(statements: list[_Statement], i: int) -> bool:
    if i == 0:
        return True
    prev = statements[i - 1]
    if not isinstance(prev, _Content):
        return False
    pattern = r"\r?\n\s*?$" if i >= 2 else r"(^|\r?\n)\s*?$"
    return re.search(pattern, prev.original) is not None


def _next_blank(statements: list[_Statement], i: int) -> bool:
    if i + 1 >= len(statements):
        return True
    nxt = statements[i + 1]
    if not isinstance(nxt, _Content):
        return False
    pattern = r"^\s*?\r?\n" if i + 2 < len(statements) else r"^\s*?(\r?\n|$)"
    return re.search(pattern, nxt.original) is not None


# --- evaluation ------------------------------------------------------------------------------------

_ESCAPES = {
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    '"': "&quot;",
    "'": "&#x27;",
    "`": "&#x60;",
    "=": "&#x3D;",
}
_ESCAPE_RE = re.compile("[&<>\"'`=]")
_BLOCK_BUILTINS = frozenset({"if", "unless", "each", "with", "blockHelperMissing"})
_HELPER_BUILTINS = frozenset({"log", "lookup", "helperMissing"})
_BUILTINS = _BLOCK_BUILTINS | _HELPER_BUILTINS


def _escape(value: Any) -> str:
    text = "" if value is None or isinstance(value, Helper) else js_string(value)
    return _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group(0)], text)


def _lookup_property(value: Any, key: str) -> Any:
    if isinstance(value, Mapping):
        return value.get(key)
    if isinstance(value, list | str):
        if key == "length":
            return len(value)
        if is_array_index(key) and int(key) < len(value):
            return value[int(key)]
    return None


@dataclass(frozen=True)
class Template:
    """A parsed template; :meth:`render` may be called with many scopes."""

    statements: tuple[_Statement, ...]

    def calls(self) -> Iterator[tuple[str, int, tuple[str, ...]]]:
        """Each call of a top-level name: ``(name, positional argument count, hash keys)``.

        ``{{name}}`` counts as a call without arguments, as Handlebars calls a helper found there.
        """
        for statement in self.statements:
            if isinstance(statement, _Mustache):
                yield from _calls_of(statement.call)

    def references(self) -> Iterator[tuple[str, bool]]:
        """Each name the template renders or calls, and whether it is called with arguments: the
        head of every mustache and sub-expression (``a`` and ``f`` of ``{{a}} {{g (f x)}}``, not
        the argument ``x``, which may stand for ``undefined`` on purpose).

        The name is a path's first part (``a`` of ``{{a.b}}``, ``x`` of ``{{@root.x}}``); a path that
        can never resolve (``{{../x}}``, ``{{@index}}``) is given whole. The built-in helpers
        (``lookup``, ``log``) and ``{{this}}`` are not references; the block helpers (``{{if}}``),
        which this renderer refuses, are.
        """
        for statement in self.statements:
            if isinstance(statement, _Mustache):
                yield from _references_of(statement.call)

    def render(self, scope: Scope) -> str:
        out: list[str] = []
        for statement in self.statements:
            if isinstance(statement, _Content):
                out.append(statement.value)
            elif isinstance(statement, _Mustache):
                value = _Evaluator(scope).mustache(statement.call)
                if statement.escaped:
                    out.append(_escape(value))
                elif value is not None and not isinstance(value, Helper):
                    out.append(js_string(value))
        return "".join(out)


@dataclass(frozen=True)
class _Evaluator:
    scope: Scope

    def mustache(self, call: _Call) -> Any:
        path = _as_path(call.path)
        name = path.parts[0] if path.parts else ""
        is_helper_call = bool(call.params) or call.hash is not None
        if path.simple and not path.data and name in _BUILTINS:
            return self.builtin(name, call)
        if is_helper_call:
            return self.invoke(path, call)
        if path.simple and not path.data:
            value = self.scope.get(name)
            return value([], {}) if isinstance(value, Helper) else value
        value = self.resolve(path)
        return value([], None) if isinstance(value, Helper) else value

    def invoke(self, path: _Path, call: _Call) -> Any:
        args = [self.expr(param) for param in call.params]
        hash_args = {key: self.expr(value) for key, value in call.hash or ()}
        target = self.resolve(path)
        if isinstance(target, Helper):
            return target(args, hash_args)
        if not js_truthy(target):
            if args:
                raise TemplateError(f'Missing helper: "{path.original}"')
            return None
        raise TemplateError(f"{path.original} is not a function")

    def builtin(self, name: str, call: _Call) -> Any:
        if name in _BLOCK_BUILTINS:
            raise TemplateError(f"the block helper {name!r} is not supported")
        args = [self.expr(param) for param in call.params]
        for _key, value in call.hash or ():
            self.expr(value)
        if name == "lookup":
            if len(args) != 2:
                raise TemplateError("lookup needs two arguments")
            obj, key = args
            return _lookup_property(obj, js_string(key)) if js_truthy(obj) else obj
        if name == "helperMissing" and args:
            raise TemplateError('Missing helper: "helperMissing"')
        return None

    def expr(self, node: _Expr) -> Any:
        if isinstance(node, _Literal):
            return node.value
        if isinstance(node, _SubExpr):
            path = _as_path(node.call.path)
            if path.simple and not path.data and path.parts[0] in _BUILTINS:
                return self.builtin(path.parts[0], node.call)
            return self.invoke(path, node.call)
        return self.resolve(node)

    def resolve(self, path: _Path) -> Any:
        if path.depth:
            return None
        parts = list(path.parts)
        current: Any = self.scope
        if path.data:
            if not parts or parts[0] != "root":
                return None
            parts = parts[1:]
        for part in parts:
            current = _lookup_property(current, part)
            if current is None:
                return None
        return current


def _calls_of(call: _Call) -> Iterator[tuple[str, int, tuple[str, ...]]]:
    path = _as_path(call.path)
    if len(path.parts) == 1 and not path.depth and not path.data:
        yield path.parts[0], len(call.params), tuple(key for key, _value in call.hash or ())
    for node in (*call.params, *(value for _key, value in call.hash or ())):
        if isinstance(node, _SubExpr):
            yield from _calls_of(node.call)


def _reference(path: _Path) -> str | None:
    if path.depth or (path.data and (not path.parts or path.parts[0] != "root")):
        return path.original
    parts = path.parts[1:] if path.data else path.parts
    return parts[0] if parts else None


def _references_of(call: _Call) -> Iterator[tuple[str, bool]]:
    head = _as_path(call.path)  # {{"name"}} looks "name" up too
    if not (head.simple and not head.data and head.parts[0] in _HELPER_BUILTINS):
        name = _reference(head)
        if name is not None:
            yield name, bool(call.params) or call.hash is not None
    for node in (*call.params, *(value for _key, value in call.hash or ())):
        if isinstance(node, _SubExpr):
            yield from _references_of(node.call)


def _as_path(node: _Path | _Literal) -> _Path:
    if isinstance(node, _Path):
        return node
    return _Path((node.original,), node.original)


@lru_cache(maxsize=512)
def compile_template(source: str) -> Template:
    """Parse ``source``; raises :class:`TemplateError` when Handlebars would not compile it."""
    statements = _Parser(source).parse()
    _apply_whitespace_control(statements)
    return Template(tuple(statements))


def render(source: str, scope: Scope) -> str:
    """Compile and render ``source`` against ``scope``."""
    return compile_template(source).render(scope)


def is_raw_statement(pattern: str) -> bool:
    """Whether ``pattern`` is exactly one ``{{raw}}`` mustache (metadata-action ``isRawStatement``)."""
    try:
        statements = _Parser(pattern).parse()
    except TemplateError:
        return False
    if len(statements) != 1 or not isinstance(statements[0], _Mustache):
        return False
    path = statements[0].call.path
    return isinstance(path, _Path) and path.parts == ("raw",)
