"""SemVer (node-semver), PEP 440 (@renovate/pep440) and JavaScript value helpers."""

from __future__ import annotations

import math

import pytest

from splitbuild.tags.jsregex import JsRegexError, compile_js_regex, js_match
from splitbuild.tags.jsvalues import js_number, js_object_order, js_string
from splitbuild.tags.pep440 import parse_pep440
from splitbuild.tags.semver import parse_semver


@pytest.mark.parametrize(
    "text",
    ["1.2.3", "v1.2.3", " v1.2.3 ", "0.0.0", "1.2.3-rc.1", "1.2.3-0a.1", "1.2.3+build.5", "1.2.3-x-y+z--9"],
)
def test_semver_valid(text: str) -> None:
    assert parse_semver(text) is not None


@pytest.mark.parametrize(
    "text",
    [
        "1.2",
        "v1",
        "release1",
        "20200110-RC2",
        "01.2.3",
        "1.2.3-01",
        "1.2.3-",
        "1.2.3+",
        "V1.2.3",
        "=1.2.3",
        "1.2.3.4",
        "9007199254740992.0.0",
        "1." + "1" * 260 + ".0",
    ],
)
def test_semver_invalid(text: str) -> None:
    assert parse_semver(text) is None


def test_semver_render_data() -> None:
    version = parse_semver("v1.2.3-rc.1.9007199254740993+b.7")
    assert version is not None
    data = version.render_data()
    assert data["raw"] == "v1.2.3-rc.1.9007199254740993+b.7"
    assert data["version"] == "1.2.3-rc.1.9007199254740993"
    assert data["prerelease"] == ["rc", 1, "9007199254740993"]
    assert data["build"] == ["b", "7"]
    assert (data["major"], data["minor"], data["patch"]) == (1, 2, 3)


@pytest.mark.parametrize(
    ("text", "clean", "pre", "post", "dev"),
    [
        ("v1.1.1", "1.1.1", False, False, False),
        ("1.1beta2", "1.1b2", True, False, False),
        ("1.0dev4", "1.0.dev4", True, False, True),
        ("1.2post1", "1.2.post1", False, True, False),
        ("1.0-1", "1.0.post1", False, True, False),
        ("1!2.3", "1!2.3", False, False, False),
        ("1.0RC", "1.0rc0", True, False, False),
        ("1.0.preview-3", "1.0rc3", True, False, False),
        ("01.02", "1.2", False, False, False),
        ("1.2.3+Local.01", "1.2.3+local,1", False, False, False),
    ],
)
def test_pep440(text: str, clean: str, pre: bool, post: bool, dev: bool) -> None:
    version = parse_pep440(text)
    assert version is not None
    assert version.clean() == clean
    assert (version.is_prerelease, version.is_postrelease, version.is_devrelease) == (pre, post, dev)


@pytest.mark.parametrize("text", [" 1.0", "1.0 ", "x1.0", "1.0-", "1..0", "release"])
def test_pep440_invalid(text: str) -> None:
    assert parse_pep440(text) is None


def test_pep440_components_default_to_zero() -> None:
    version = parse_pep440("7")
    assert version is not None
    assert [version.component(i) for i in range(3)] == [7, 0, 0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", 0.0), (" 12 ", 12.0), ("0x10", 16.0), ("1e3", 1000.0), ("-.5", -0.5), ("Infinity", math.inf)],
)
def test_js_number(text: str, expected: float) -> None:
    assert js_number(text) == expected


@pytest.mark.parametrize("text", ["one", "1,0", "0x", "-0x1", "inf", "1_000"])
def test_js_number_nan(text: str) -> None:
    assert math.isnan(js_number(text))


def test_js_string_and_object_order() -> None:
    assert [js_string(v) for v in (None, True, 3, 2.5, 1e21, [1, None, "a"], {"a": 1})] == [
        "undefined",
        "true",
        "3",
        "2.5",
        "1e+21",
        "1,,a",
        "[object Object]",
    ]
    assert js_object_order(["b", "10", "a", "2", "01"]) == ["2", "10", "b", "a", "01"]


class TestJsRegex:
    def test_dollar_is_end_of_input_only(self) -> None:
        assert js_match(compile_js_regex("a$"), "a\n") is None
        assert js_match(compile_js_regex("a$", "m"), "a\nb") == ["a"]

    def test_groups_named_groups_and_flags(self) -> None:
        assert js_match(compile_js_regex(r"(?<n>\d+)-\k<n>"), "v12-12") == ["12-12", "12"]
        assert js_match(compile_js_regex("V(.)", "i"), "v1") == ["v1", "1"]
        assert js_match(compile_js_regex(r"\d+", "g"), "v1.22.3") == ["1", "22", "3"]
        assert js_match(compile_js_regex(r"\d", "y"), "v1") is None
        assert js_match(compile_js_regex(r"x(y)?"), "x") == ["x", None]

    def test_ascii_classes(self) -> None:
        assert js_match(compile_js_regex(r"\d"), "\u0663") is None
        assert js_match(compile_js_regex(r"[^]"), "\n") == ["\n"]
        assert js_match(compile_js_regex(r"a[]"), "a") is None

    @pytest.mark.parametrize(("source", "flags"), [("(", ""), ("a", "q"), ("a", "gg"), (r"(?<=a+)b", "")])
    def test_invalid(self, source: str, flags: str) -> None:
        with pytest.raises(JsRegexError):
            compile_js_regex(source, flags)
