"""The Handlebars subset and moment date formatting behind metadata-action expressions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from splitbuild.tags.template import Helper, TemplateError, compile_template, is_raw_statement, render

SCOPE: dict[str, Any] = {
    "text": "x&y<'\"`=",
    "zero": 0,
    "no": False,
    "items": [1, "b", None],
    "obj": {"k": "v"},
    "echo": Helper(lambda args, hash_args: f"{args}|{sorted((hash_args or {}).items())}|{hash_args is None}"),
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("plain & text", "plain & text"),
        ("{{text}}", "x&amp;y&lt;&#x27;&quot;&#x60;&#x3D;"),
        ("{{{text}}}", "x&y<'\"`="),
        ("{{&text}}", "x&y<'\"`="),
        ("{{ text }}", "x&amp;y&lt;&#x27;&quot;&#x60;&#x3D;"),
        ("{{zero}}-{{no}}", "0-false"),
        ("{{items}}", "1,b,"),
        ("{{obj}}", "[object Object]"),
        ("{{obj.k}}{{obj/k}}{{this.obj.k}}{{[obj].k}}{{@root.obj.k}}", "vvvvv"),
        ("{{items.length}}{{items.[1]}}{{items.1.length}}", "3b1"),
        ("{{missing}}{{missing.deeper}}{{../text}}", ""),
        ("{{'text'}}", "x&amp;y&lt;&#x27;&quot;&#x60;&#x3D;"),
        ("{{lookup obj 'k'}}{{log 'ignored'}}", "v"),
        ("\\{{text}}", "{{text}}"),
        ("\\\\{{zero}}", "\\0"),
        ("a  {{~zero~}}  b", "a0b"),
        ("a {{! note }} b", "a  b"),
        ("  {{!-- note --}}  \nz", "z"),
    ],
)
def test_render(template: str, expected: str) -> None:
    assert render(template, SCOPE) == expected


def test_helpers_get_arguments_hash_and_subexpressions() -> None:
    assert render("{{{echo 1 'two' 2.5 true null key=(echo) other=obj.k}}}", SCOPE) == (
        "[1, 'two', 2.5, True, None]|[('key', '[]|[]|False'), ('other', 'v')]|False"
    )


def test_a_helper_reached_by_a_path_is_called_without_options() -> None:
    assert render("{{{this.echo}}}", SCOPE) == "[]|[]|True"
    assert render("{{{echo}}}", SCOPE) == "[]|[]|False"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{nothing 'x'}}", 'Missing helper: "nothing"'),
        ("{{text 'x'}}", "not a function"),
        ("{{zero 'x'}}", 'Missing helper: "zero"'),
        ("{{#if text}}x{{/if}}", "block helpers"),
        ("{{else}}", "{{else}}"),
        ("{{^text}}x{{/text}}", "inverse sections"),
        ("{{> partial}}", "partials"),
        ("{{if text}}", "block helper 'if'"),
        ("{{text}}}", "unbalanced braces"),
        ("{{{text}}", "unbalanced braces"),
        ("{{text", "unclosed"),
        ("{{text as |x|}}", "block parameters"),
        ("{{a=b}}", "unexpected"),
        ("{{a.'x'}}", "unexpected 'x'"),
        ("{{items.1}}", "unexpected '1'"),
        ("{{}}", "incomplete expression"),
        ("{{a (b}}", "incomplete expression"),
    ],
)
def test_errors(template: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message.replace("{", r"\{").replace("^", r"\^")):
        render(template, SCOPE)


def test_calls_lists_top_level_helper_calls() -> None:
    template = compile_template("{{date}} {{date 'Y' tz='UTC'}} {{x (commit_date 'a' 'b')}}")
    assert list(template.calls()) == [
        ("date", 0, ()),
        ("date", 1, ("tz",)),
        ("x", 1, ()),
        ("commit_date", 2, ()),
    ]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("{{raw}}", True),
        ("{{ raw }}", True),
        ("{{~raw~}}", True),
        ("{{{raw}}}", True),
        ("{{this.raw}}", True),
        ("{{raw}} ", False),
        ("v{{raw}}", False),
        ("{{raw.x}}", False),
        ("{{ raw }}.{{ version }}", False),
        ("{{raw}", False),
        ("{{version}}", False),
    ],
)
def test_is_raw_statement(pattern: str, expected: bool) -> None:
    assert is_raw_statement(pattern) is expected


class TestMomentFormat:
    INSTANT = datetime(2020, 1, 10, 0, 30, 0, 123000, tzinfo=UTC)

    @pytest.mark.parametrize(
        ("fmt", "zone", "expected"),
        [
            ("YYYYMMDD-HHmmss", "UTC", "20200110-003000"),
            ("YYYYMMDD-HHmmss", "Asia/Tokyo", "20200110-093000"),
            ("YYYYMMDD-HHmmss", "asia/tokyo", "20200110-093000"),
            ("YYYYMMDD-HHmmss", "Not/AZone", "20200110-003000"),
            ("YYYY-MM-DDTHH:mm:ss.SSS[Z]", "UTC", "2020-01-10T00:30:00.123Z"),
            ("dddd, Do MMMM YYYY h:mm a", "UTC", "Friday, 10th January 2020 12:30 am"),
            ("ddd dd d e E Q Qo DDD DDDo DDDD", "UTC", "Fri Fr 5 5 5 1 1st 10 10th 010"),
            ("Z ZZ z", "Asia/Tokyo", "+09:00 +0900 JST"),
            ("Z", "America/New_York", "-05:00"),
            ("YY YYYYY YYYYYY y yo N NNNN", "UTC", "20 02020 +002020 2020 2020th AD Anno Domini"),
            ("k kk hh hmm Hmmss S SS SSSS", "UTC", "24 24 12 1230 03000 1 12 1230"),
            ("X x", "UTC", "1578616200 1578616200123"),
            (
                "LT|LTS|L|LL|LLL|LLLL",
                "UTC",
                "12:30 AM|12:30:00 AM|01/10/2020|January 10, 2020|"
                "January 10, 2020 12:30 AM|Friday, January 10, 2020 12:30 AM",
            ),
            (
                "l|ll|lll|llll",
                "UTC",
                "1/10/2020|Jan 10, 2020|Jan 10, 2020 12:30 AM|Fri, Jan 10, 2020 12:30 AM",
            ),
            ("[YYYY] \\YYYY w| g", "UTC", "YYYY YYYY w| g"),
            ("", "UTC", "2020-01-10T00:30:00Z"),
            ("", "Asia/Tokyo", "2020-01-10T09:30:00+09:00"),
            ("", "Europe/London", "2020-01-10T00:30:00Z"),
        ],
    )
    def test_tokens(self, fmt: str, zone: str, expected: str) -> None:
        from splitbuild.tags.momentfmt import format_moment

        assert format_moment(self.INSTANT, fmt, zone) == expected

    @pytest.mark.parametrize(
        ("day", "expected"),
        [
            (datetime(2021, 1, 1, tzinfo=UTC), "2021-01 2020-53 5"),
            (datetime(2020, 12, 31, tzinfo=UTC), "2021-01 2020-53 4"),
            (datetime(2020, 12, 26, tzinfo=UTC), "2020-52 2020-52 6"),
        ],
    )
    def test_week_years(self, day: datetime, expected: str) -> None:
        from splitbuild.tags.momentfmt import format_moment

        assert format_moment(day, "gggg-ww GGGG-WW E", "UTC") == expected
