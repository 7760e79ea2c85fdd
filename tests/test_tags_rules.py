"""Parsing of tag rules, flavor, images and multi-line inputs (splitbuild.tags)."""

from __future__ import annotations

import pytest

from splitbuild.errors import ConfigError
from splitbuild.tags import (
    get_inputs,
    parse_flavor,
    parse_images,
    parse_rule_lines,
    parse_tag,
    transform_tags,
)
from splitbuild.tags.csvparse import CsvError, parse_document, parse_record
from splitbuild.tags.rules import parse_tag_rules


class TestParseTag:
    def test_bare_value_is_a_raw_rule(self) -> None:
        assert parse_tag("foo") == {
            "type": "raw",
            "attrs": {"value": "foo", "enable": "true", "priority": "200"},
        }

    def test_keys_are_lowercased_and_trimmed_values_keep_later_equals(self) -> None:
        rule = parse_tag(" TYPE = raw , Value = a=b ")
        assert rule["attrs"]["value"] == "a=b"

    def test_field_starting_with_equals_is_a_value(self) -> None:
        assert parse_tag("type=raw,=x")["attrs"]["value"] == "=x"

    def test_trailing_empty_field_empties_the_value(self) -> None:
        assert parse_tag("type=raw,value=x,")["attrs"]["value"] == ""

    def test_unknown_keys_are_kept(self) -> None:
        assert parse_tag("type=sha,colour=blue")["attrs"]["colour"] == "blue"

    def test_explicit_empty_prefix_beats_the_default(self) -> None:
        assert parse_tag("type=sha,prefix=")["attrs"]["prefix"] == ""

    def test_csv_quotes_protect_commas(self) -> None:
        assert parse_tag('type=match,"pattern=\\d{1,2}"')["attrs"]["pattern"] == "\\d{1,2}"
        assert parse_tag('type=raw,"value=a""b"')["attrs"]["value"] == 'a"b'

    @pytest.mark.parametrize(
        ("line", "reason"),
        [
            ("type=foo", "unknown type 'foo'"),
            ("type=RAW,value=x", "unknown type 'RAW'"),
            ("type=semver", "needs a pattern attribute"),
            ("type=pep440,value=1", "needs a pattern attribute"),
            ("type=match", "needs a pattern attribute"),
            ("type=match,pattern=x,group=one", "group 'one' is not a number"),
            ("type=ref", "needs an event attribute"),
            ("type=ref,event=push", "event 'push' is not one of branch, tag, pr"),
            ("type=raw", "needs a value attribute"),
            ("type=sha,format=medium", "format 'medium' is not one of short, long"),
            ('type=raw,value=a"b', "not a valid CSV record"),
            ('type=raw,"value=x', "not a valid CSV record"),
            ("", "not a valid CSV record"),
        ],
    )
    def test_invalid_rules_name_the_rule(self, line: str, reason: str) -> None:
        with pytest.raises(ConfigError) as info:
            parse_tag(line)
        message = str(info.value)
        assert message.startswith(f"invalid tag rule {line!r}: ")
        assert reason in message
        assert "\n" not in message

    def test_empty_group_counts_as_a_number(self) -> None:
        assert parse_tag("type=match,pattern=x,group=")["attrs"]["group"] == ""


class TestOrdering:
    def test_default_rules(self) -> None:
        assert [(r.type.value, r.get("event")) for r in parse_tag_rules([])] == [
            ("schedule", ""),
            ("ref", "branch"),
            ("ref", "tag"),
            ("ref", "pr"),
        ]

    def test_priority_highest_first_and_ties_keep_input_order(self) -> None:
        rules = transform_tags(
            ["type=raw,b", "type=sha", "type=raw,a", "type=raw,c,priority=201", "type=raw,d"]
        )
        assert [r["attrs"].get("value", r["type"]) for r in rules] == ["c", "b", "a", "d", "sha"]

    def test_priorities_compare_as_numbers(self) -> None:
        rules = transform_tags(
            ["type=raw,a,priority=90", "type=raw,b,priority=1000", "type=raw,c,priority=0x3e9"]
        )
        assert [r["attrs"]["value"] for r in rules] == ["c", "b", "a"]


class TestFlavor:
    def test_defaults(self) -> None:
        assert parse_flavor([]) == {
            "latest": "auto",
            "prefix": "",
            "prefixLatest": False,
            "suffix": "",
            "suffixLatest": False,
        }

    def test_later_lines_override_and_onlatest_follows_its_affix(self) -> None:
        flavor = parse_flavor(["prefix=a-,onlatest=true", "suffix=-b", "prefix=c-", "latest=false"])
        assert flavor == {
            "latest": "false",
            "prefix": "c-",
            "prefixLatest": True,
            "suffix": "-b",
            "suffixLatest": False,
        }

    def test_value_is_the_second_piece_of_an_equals_split(self) -> None:
        assert parse_flavor(["suffix=-a=b"])["suffix"] == "-a"

    def test_onlatest_without_affix_in_the_same_line_is_ignored(self) -> None:
        flavor = parse_flavor(["prefix=p-", "onlatest=true"])
        assert flavor["prefixLatest"] is False

    @pytest.mark.parametrize(
        ("lines", "reason"),
        [
            (["latest"], "is not key=value"),
            (["latest=yes"], "latest must be auto, true or false"),
            (["prefix=a,onlatest=TRUE"], "onlatest must be true or false"),
            (["colour=blue"], "unknown key 'colour'"),
        ],
    )
    def test_invalid_entries(self, lines: list[str], reason: str) -> None:
        with pytest.raises(ConfigError, match=reason):
            parse_flavor(lines)


class TestImages:
    def test_legacy_comma_list(self) -> None:
        assert parse_images(["a/b, c/d"]) == [
            {"name": "a/b", "enable": True},
            {"name": "c/d", "enable": True},
        ]

    def test_attribute_form(self) -> None:
        assert parse_images(["name=a/B,enable=false", "c/d"]) == [
            {"name": "a/B", "enable": False},
            {"name": "c/d", "enable": True},
        ]

    @pytest.mark.parametrize(
        ("lines", "reason"),
        [
            (["a/b,enable=yes"], "enable must be true or false"),
            (["a/b,tag=x"], "unknown attribute 'tag'"),
            (["name=,enable=true"], "the image name is empty"),
        ],
    )
    def test_invalid_entries(self, lines: list[str], reason: str) -> None:
        with pytest.raises(ConfigError, match=reason):
            parse_images(lines)


class TestInputLists:
    def test_repeated_values_with_several_lines_each(self) -> None:
        values = ["type=ref,event=branch\ntype=sha\n", "  type=raw,value=x  "]
        assert parse_rule_lines(values) == ["type=ref,event=branch", "type=sha", "type=raw,value=x"]

    def test_comments_only_at_line_start(self) -> None:
        text = "#skip\ntype=raw,value=a#b\n # kept\n\n   \ntype=sha"
        assert parse_rule_lines([text]) == ["type=raw,value=a#b", "# kept", "type=sha"]

    def test_quotes_are_consumed_like_the_action_input(self) -> None:
        assert parse_rule_lines(['type=raw,"value=a""b"']) == ['type=raw,value=a"b']
        assert parse_rule_lines(['"type=match,""pattern=\\d{1,2}"""']) == ['type=match,"pattern=\\d{1,2}"']
        assert parse_tag(parse_rule_lines(['"type=match,""pattern=\\d{1,2}"""'])[0])["attrs"]["pattern"] == (
            "\\d{1,2}"
        )

    def test_quote_inside_a_field_is_literal_in_multi_line_inputs(self) -> None:
        assert parse_rule_lines(['foo=a"b']) == ['foo=a"b']

    def test_crlf_and_unclosed_quote(self) -> None:
        assert parse_rule_lines(["a\r\nb\rc"]) == ["a", "b", "c"]
        with pytest.raises(ConfigError, match="quote not closed"):
            parse_rule_lines(['type=raw,"value=x'], name="--tags")

    def test_get_inputs_defaults(self) -> None:
        parsed = get_inputs({"images": "a/b\n#c\nd/e", "sep-tags": ","})
        assert parsed["images"] == ["a/b", "d/e"]
        assert parsed["sepTags"] == ","
        assert parsed["sepLabels"] == "\n"
        assert parsed["bakeTarget"] == "docker-metadata-action"
        assert parsed["tags"] == []


class TestCsv:
    def test_strict_record(self) -> None:
        assert parse_record('a,"b,c",,"d""e"') == ["a", "b,c", "", 'd"e']
        with pytest.raises(CsvError):
            parse_record('"a"b')
        with pytest.raises(CsvError):
            parse_record('a"b')

    def test_relaxed_document_keeps_quote_after_text(self) -> None:
        assert parse_document('"ab"cd,x\n#c\n\ny') == [['"abcd', "x"], ["y"]]

    def test_quoted_field_may_span_lines(self) -> None:
        assert parse_document('"a\nb",c') == [["a\nb", "c"]]
