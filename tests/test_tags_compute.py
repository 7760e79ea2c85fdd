"""Tag, label and annotation computation: rules of metadata-action that no shared vector pins."""

from __future__ import annotations

from typing import Any

import pytest

from splitbuild.errors import ConfigError
from splitbuild.tags import Context, Inputs, Metadata, compute, compute_metadata

SHA = "860c1904a1ce19322e91ac35af1ab07466440c37"
NOW = "2020-01-10T00:30:00.000Z"
BASE_CONTEXT: dict[str, Any] = {
    "eventName": "push",
    "ref": "refs/heads/dev",
    "sha": SHA,
    "defaultBranch": "master",
    "commitDate": NOW,
    "now": NOW,
    "repo": {
        "name": "Hello-World",
        "description": "This your first repo!",
        "html_url": "https://github.com/octocat/Hello-World",
        "license": {"spdx_id": "MIT"},
    },
    "payload": {"repository": {"default_branch": "master"}},
}


def meta(
    tags: list[str] | None = None,
    *,
    flavor: list[str] | None = None,
    labels: list[str] | None = None,
    annotations: list[str] | None = None,
    images: list[str] | None = None,
    strict: bool = False,
    **context: Any,
) -> Metadata:
    data = {**BASE_CONTEXT, **context}
    inputs = Inputs(
        images=["user/app"] if images is None else images,
        tags=tags or [],
        flavor=flavor or [],
        labels=labels or [],
        annotations=annotations or [],
    )
    return compute_metadata(inputs, Context.from_mapping(data), strict=strict)


def names(tags: list[str], **kwargs: Any) -> list[str]:
    return meta(tags, **kwargs).tag_names


class TestSanitizing:
    @pytest.mark.parametrize(
        ("branch", "tag"),
        [
            ("feature/foo-bar", "feature-foo-bar"),
            ("Feature/ÜberX#12", "Feature-berX-12"),
            ("a//b  c", "a-b-c"),
            ("-.x", "-.x"),
            ("UPPER.case_ok-1", "UPPER.case_ok-1"),
        ],
    )
    def test_branch_names(self, branch: str, tag: str) -> None:
        assert names(["type=ref,event=branch"], ref=f"refs/heads/{branch}") == [tag]

    def test_no_length_cap(self) -> None:
        long_branch = "b" * 200
        assert names(["type=ref,event=branch"], ref=f"refs/heads/{long_branch}") == [long_branch]

    def test_expression_output_is_html_escaped_before_sanitizing(self) -> None:
        assert names(["type=raw,value=x-{{branch}}"], ref="refs/heads/a&b") == ["x-a-amp-b"]
        assert names(["type=raw,value=x-{{{branch}}}"], ref="refs/heads/a&b") == ["x-a-b"]
        assert names(["type=raw,value=foo&bar"]) == ["foo-bar"]

    def test_dates_are_sanitized_after_rendering(self) -> None:
        assert names(["type=raw,value={{commit_date YYYY-MM-DD}}"]) == ["2020-01-10T00-30-00Z"]

    def test_duplicates_are_dropped_after_sanitizing(self) -> None:
        assert names(["type=raw,a/b", "type=raw,a-b", "type=raw,c", "type=raw,c#"]) == ["a-b", "c", "c-"]


class TestPrerelease:
    def test_semver_prerelease_gives_only_the_full_version(self) -> None:
        rules = ["type=semver,pattern={{version}}", "type=semver,pattern={{major}}.{{minor}}"]
        result = meta(rules, ref="refs/tags/v1.2.3-rc.1")
        assert result.tag_names == ["1.2.3-rc.1"]
        assert result.version_info.latest is False

    def test_semver_prerelease_raw_pattern_keeps_the_raw_tag(self) -> None:
        assert names(["type=semver,pattern={{raw}}"], ref="refs/tags/v1.2.3-beta.2+b5") == [
            "v1.2.3-beta.2-b5"
        ]

    def test_semver_release(self) -> None:
        rules = [
            "type=semver,pattern={{version}}",
            "type=semver,pattern={{major}}.{{minor}}",
            "type=semver,pattern=v{{major}}",
        ]
        assert names(rules, ref="refs/tags/v0.1.2") == ["0.1.2", "0.1", "v0", "latest"]

    def test_semver_build_metadata(self) -> None:
        rules = ["type=semver,pattern={{version}}", "type=semver,pattern={{raw}}"]
        assert names(rules, ref="refs/tags/v1.2.3+build.5") == ["1.2.3", "v1.2.3-build.5", "latest"]

    def test_semver_value_match_and_slashes(self) -> None:
        rules = ['type=semver,pattern={{version}},value=p1/v1.0.0/x,"match=p1/(.*)"']
        assert names(rules) == ["1.0.0-x"]
        assert names(["type=semver,pattern={{version}},value=v2.0.0,match=nomatch(x)"]) == ["2.0.0", "latest"]
        with pytest.raises(ConfigError, match="no capture group 1"):
            meta(["type=semver,pattern={{version}},match=v\\d"], ref="refs/tags/v1.2.3")

    @pytest.mark.parametrize("tag", ["1.2", "release1", "v1.2.3.4"])
    def test_not_semver_is_skipped(self, tag: str) -> None:
        assert names(["type=semver,pattern={{version}}"], ref=f"refs/tags/{tag}") == []

    @pytest.mark.parametrize(
        ("tag", "expected"),
        [
            ("1.1beta2", ["1.1b2"]),
            ("v1.0dev4", ["1.0.dev4"]),
            ("1.2post1", ["1.2.post1"]),
            ("1.2.3", ["1.2", "latest"]),
            ("v2", ["2.0", "latest"]),
        ],
    )
    def test_pep440(self, tag: str, expected: list[str]) -> None:
        assert names(["type=pep440,pattern={{major}}.{{minor}}"], ref=f"refs/tags/{tag}") == expected

    def test_pep440_prerelease_raw_pattern(self) -> None:
        assert names(["type=pep440,pattern={{raw}}"], ref="refs/tags/v1.1beta2") == ["v1.1beta2"]

    def test_match_always_counts_as_a_release(self) -> None:
        result = meta(["type=match,pattern=v(.*),group=1"], ref="refs/tags/v1.2.3-rc.1")
        assert result.tag_names == ["1.2.3-rc.1", "latest"]


class TestLatest:
    def test_auto_on_tag_push(self) -> None:
        assert names(["type=ref,event=tag"], ref="refs/tags/sometag") == ["sometag", "latest"]

    def test_auto_off_for_branches_raw_sha_edge(self) -> None:
        assert names(["type=ref,event=branch", "type=raw,x", "type=sha", "type=edge,branch=dev"]) == [
            "edge",
            "dev",
            "x",
            "sha-860c190",
        ]

    def test_first_recorded_rule_decides(self) -> None:
        rules = ["type=raw,foo,priority=2000", "type=semver,pattern={{version}}"]
        assert names(rules, ref="refs/tags/v1.1.1") == ["foo", "1.1.1"]
        assert names(["type=semver,pattern={{version}},value=v3.0.0"]) == ["3.0.0", "latest"]

    def test_empty_values_do_not_decide(self) -> None:
        assert names(
            ["type=raw,value={{branch}},priority=2000", "type=ref,event=tag"], ref="refs/tags/v1"
        ) == [
            "v1",
            "latest",
        ]

    def test_flavor_true_and_false(self) -> None:
        assert names(["type=ref,event=branch"], flavor=["latest=true"]) == ["dev", "latest"]
        assert names(["type=ref,event=tag"], flavor=["latest=false"], ref="refs/tags/v1") == ["v1"]

    def test_no_main_means_no_latest(self) -> None:
        assert names(["type=ref,event=tag"], flavor=["latest=true"]) == []

    def test_latest_affixes_are_raw(self) -> None:
        result = names(["type=ref,event=tag"], flavor=["prefix=t{{tag}}-,onlatest=true"], ref="refs/tags/v1")
        assert result == ["tv1-v1", "t-tag--latest"]
        assert names(["type=raw,x"], flavor=["suffix=-alpine,onlatest=true", "latest=true"]) == [
            "x-alpine",
            "latest-alpine",
        ]

    def test_latest_is_not_deduplicated(self) -> None:
        assert meta(["type=raw,value=latest"], flavor=["latest=true"]).tags == [
            "user/app:latest",
            "user/app:latest",
        ]


class TestRules:
    def test_schedule_only_on_schedule_events_and_without_globals(self) -> None:
        rule = ["type=schedule,pattern=n-{{branch}}-{{date 'YYYYMMDD'}}"]
        assert names(rule) == []
        assert names(rule, eventName="schedule") == ["n--20200110"]

    def test_ref_pr_strips_merge_only(self) -> None:
        assert names(["type=ref,event=pr"], ref="refs/pull/7/head") == ["pr-7-head"]
        assert names(["type=ref,event=pr"], ref="refs/pull/7/merge") == ["pr-7"]

    def test_pull_request_target_uses_the_pr_number(self) -> None:
        result = meta(
            ["type=ref,event=pr"],
            eventName="pull_request_target",
            ref="refs/heads/main",
            payload={"number": 5},
        )
        assert result.tag_names == ["pr-5"]

    def test_pr_head_sha(self) -> None:
        context: dict[str, Any] = {
            "eventName": "pull_request_review",
            "ref": "refs/pull/1/merge",
            "payload": {"pull_request": {"head": {"sha": "abcdef0123456"}}},
        }
        on = meta(["type=sha"], env={"DOCKER_METADATA_PR_HEAD_SHA": "TRUE"}, **context)
        assert on.tag_names == ["sha-abcdef0"]
        assert on.labels["org.opencontainers.image.revision"] == "abcdef0123456"
        assert meta(["type=sha"], **context).tag_names == ["sha-860c190"]

    def test_sha_length(self) -> None:
        assert names(["type=sha"], env={"DOCKER_METADATA_SHORT_SHA_LENGTH": "12"}) == ["sha-860c1904a1ce"]
        assert names(["type=sha,format=long"], env={"DOCKER_METADATA_SHORT_SHA_LENGTH": "x"}) == [
            f"sha-{SHA}"
        ]
        with pytest.raises(ConfigError, match="DOCKER_METADATA_SHORT_SHA_LENGTH is not a valid number"):
            meta(["type=sha"], env={"DOCKER_METADATA_SHORT_SHA_LENGTH": "x"})
        assert names(["type=sha"], sha="") == []

    def test_builtin_prefixes_beat_the_flavor_prefix_but_not_its_suffix(self) -> None:
        result = names(["type=sha", "type=sha,prefix=,priority=1"], flavor=["prefix=p-", "suffix=-s"])
        assert result == ["sha-860c190-s", "860c190-s"]

    def test_edge_uses_the_repository_default_branch(self) -> None:
        context = {
            "ref": "refs/heads/main",
            "defaultBranch": "main",
            "payload": {"repository": {"default_branch": "x"}},
        }
        assert names(["type=edge", "type=raw,{{is_default_branch}}"], **context) == ["edge", "false"]

    @pytest.mark.parametrize(
        ("event", "ref", "expected"),
        [
            ("push", "refs/heads/master", "true"),
            ("push", "refs/heads/dev", "false"),
            ("create", "refs/tags/v1", "true"),
            ("schedule", "refs/heads/dev", "true"),
            ("workflow_dispatch", "refs/heads/dev", "false"),
            ("push", "", "false"),
        ],
    )
    def test_is_default_branch(self, event: str, ref: str, expected: str) -> None:
        rules = ["type=raw,value={{is_default_branch}}", "type=raw,value=not-{{is_not_default_branch}}"]
        opposite = "false" if expected == "true" else "true"
        assert names(rules, eventName=event, ref=ref) == [expected, f"not-{opposite}"]

    def test_enable_expression(self) -> None:
        rules = ["type=raw,value=latest,enable={{is_default_branch}}", "type=raw,x"]
        assert names(rules, ref="refs/heads/master") == ["latest", "x"]
        assert names(rules) == ["x"]
        with pytest.raises(ConfigError, match="enable must evaluate to true or false"):
            meta(["type=raw,x,enable=TRUE"])

    def test_base_ref(self) -> None:
        rule = ["type=raw,value=b-{{base_ref}}"]
        assert names(rule, ref="refs/tags/v1", payload={"base_ref": "refs/heads/main"}) == ["b-main"]
        assert names(rule, ref="refs/pull/1/merge", payload={"pull_request": {"base": {"ref": "dev"}}}) == [
            "b-dev"
        ]

    def test_match_groups(self) -> None:
        ref = {"ref": "refs/tags/v1.2.3"}
        assert names(['type=match,"pattern=/\\d+/g",group=1'], **ref) == ["2", "latest"]
        assert names(["type=match,pattern=/V(\\d)/i,group=1"], **ref) == ["1", "latest"]
        assert names(["type=match,pattern=v(\\d)(x)?,group=2"], **ref) == []
        assert names(["type=match,pattern=v(\\d),group=01"], **ref) == []
        assert names(["type=match,pattern=nomatch"], **ref) == []


class TestImagesAndOutputs:
    def test_images_multiply_tags_image_major_and_are_lowercased(self) -> None:
        result = meta(
            ["type=raw,a", "type=raw,b"], images=["Org/App", "name=ghcr.io/X/y", "name=z/z,enable=false"]
        )
        assert result.tags == ["org/app:a", "org/app:b", "ghcr.io/x/y:a", "ghcr.io/x/y:b"]
        assert result.bake_args() == {"DOCKER_META_IMAGES": "org/app,ghcr.io/x/y", "DOCKER_META_VERSION": "a"}

    def test_no_enabled_image_gives_bare_tags(self) -> None:
        assert meta(["type=raw,a"], images=["name=a/b,enable=false"]).tags == ["a"]
        assert meta(["type=raw,a"], images=[]).tags == ["a"]

    def test_no_version(self) -> None:
        result = meta(["type=ref,event=tag"])
        assert (result.version, result.tags, result.bake_args()) == (
            "",
            [],
            {"DOCKER_META_IMAGES": "user/app"},
        )
        assert result.labels["org.opencontainers.image.version"] == ""

    def test_outputs_use_separators(self) -> None:
        inputs = Inputs(images=["a/b"], tags=["type=raw,x", "type=raw,y"], sep_tags=",", sep_annotations=";")
        result = compute_metadata(inputs, Context.from_mapping(BASE_CONTEXT))
        outputs = result.outputs()
        assert outputs["tags"] == "a/b:x,a/b:y"
        assert outputs["tag-names"] == "x,y"
        assert outputs["version"] == "x"
        assert outputs["annotations"].count(";") == 7
        assert '"tag-names":["x","y"]' in outputs["json"]

    def test_unknown_bake_kind(self) -> None:
        with pytest.raises(ConfigError, match="unknown bake file kind"):
            meta(["type=raw,x"]).bake_file("args")


class TestLabels:
    def test_base_labels_and_custom_override(self) -> None:
        result = meta(
            ["type=raw,v1"],
            labels=["org.opencontainers.image.title=Custom", "maintainer=me", "novalue", "empty="],
        )
        assert result.label_list == [
            "empty=",
            "maintainer=me",
            "org.opencontainers.image.created=2020-01-10T00:30:00.000Z",
            "org.opencontainers.image.description=This your first repo!",
            "org.opencontainers.image.licenses=MIT",
            f"org.opencontainers.image.revision={SHA}",
            "org.opencontainers.image.source=https://github.com/octocat/Hello-World",
            "org.opencontainers.image.title=Custom",
            "org.opencontainers.image.url=https://github.com/octocat/Hello-World",
            "org.opencontainers.image.version=v1",
        ]

    def test_ordering_follows_locale_compare(self) -> None:
        keys = ["Zeta", "alpha", "a.b", "a-b", "a_b", "B", "dup", "=empty", "org.x", "1x", "a~b", "ab", "Ab"]
        result = meta([], labels=[f"{key}=v" for key in keys] + ["dup=second"])
        ordered = [
            entry.split("=", 1)[0]
            for entry in result.label_list
            if not entry.startswith("org.opencontainers")
        ]
        assert ordered == [
            "",
            "1x",
            "a_b",
            "a-b",
            "a.b",
            "a~b",
            "ab",
            "Ab",
            "alpha",
            "B",
            "dup",
            "org.x",
            "Zeta",
        ]
        assert result.labels["dup"] == "second"

    def test_labels_are_templates_but_not_sanitized(self) -> None:
        result = meta([], labels=["branch={{branch}}", "raw=a&b", "esc={{{branch}}}"], ref="refs/heads/f/a&b")
        assert (result.labels["branch"], result.labels["raw"], result.labels["esc"]) == (
            "f/a&amp;b",
            "a&b",
            "f/a&b",
        )

    def test_json_labels_object_order_and_line_breaks(self) -> None:
        result = meta([], labels=["2=two", "10=ten", "multi=a\nb"])
        assert list(result.labels)[:2] == ["2", "10"]
        assert result.labels["multi"] == "a"
        assert "multi=a\nb" in result.label_list

    def test_annotations_are_independent_and_leveled(self) -> None:
        result = meta([], annotations=["note=x"])
        assert "note=x" in result.annotation_list
        assert "note" not in result.labels
        assert result.annotations == [f"manifest:{entry}" for entry in result.annotation_list]

    def test_annotation_levels_from_inputs_then_env(self) -> None:
        inputs = Inputs(annotations=["k=v"], annotation_levels=["index", "manifest-descriptor"])
        context = Context.from_mapping(BASE_CONTEXT)
        leveled = compute_metadata(inputs, context).annotations
        assert leveled[0] == "index:k=v"
        assert leveled[-1] == "manifest-descriptor:org.opencontainers.image.version=dev"
        from_env = Context.from_mapping(
            {**BASE_CONTEXT, "env": {"DOCKER_METADATA_ANNOTATIONS_LEVELS": "index"}}
        )
        assert all(a.startswith("index:") for a in compute_metadata(Inputs(), from_env).annotations)

    def test_label_template_error_names_the_label(self) -> None:
        with pytest.raises(ConfigError, match=r"^label 'a=\{\{x 1\}\}': Missing helper"):
            meta([], labels=["a={{x 1}}"])


class TestStrictChecks:
    @pytest.mark.parametrize(
        ("rules", "message"),
        [
            (
                ["type=schedule,pattern={{date}}"],
                r"tag rule 'type=schedule,pattern=\{\{date\}\}': \{\{date\}\} needs",
            ),
            (["type=match,pattern=v(,group=1"], r"tag rule 'type=match,pattern=v\(,group=1': "),
            (["type=semver,pattern={{version}},match=(x"], "tag rule 'type=semver"),
            (["type=pep440,pattern={{#if}}x{{/if}}"], "block helpers"),
            (["type=schedule,pattern={{commit_date 'Y' zone='x'}}"], "Unknown zone attribute"),
        ],
    )
    def test_rules_the_event_does_not_evaluate(self, rules: list[str], message: str) -> None:
        assert meta([*rules, "type=raw,x"], strict=False).tag_names == ["x"]
        with pytest.raises(ConfigError, match=message):
            meta(rules, strict=True)

    def test_literal_enable_must_be_a_boolean(self) -> None:
        with pytest.raises(ConfigError, match="enable must be true or false"):
            meta(["type=schedule,enable=yes"], strict=True)

    def test_flavor_and_labels(self) -> None:
        with pytest.raises(ConfigError, match="flavor prefix"):
            meta(["type=raw,x"], flavor=["prefix={{date}}"], strict=True)
        with pytest.raises(ConfigError, match=r"^annotation .a=\{\{date tz='x'\}\}.: \{\{date\}\} needs one"):
            meta([], annotations=["a={{date tz='x'}}"], strict=True)

    def test_lenient_mode_fails_only_when_evaluated(self) -> None:
        rules = ["type=schedule,pattern={{date}}", "type=raw,x"]
        assert meta(rules, strict=False).tag_names == ["x"]
        with pytest.raises(ConfigError, match="needs one format argument"):
            meta(rules, strict=False, eventName="schedule")


class TestComputeAdapter:
    def test_plain_data_result(self) -> None:
        result = compute(BASE_CONTEXT, {"images": ["user/app"], "tags": ["type=raw,x"]})
        assert result["tags"] == ["user/app:x"]
        assert result["version"] == {"main": "x", "partial": [], "latest": False}
        assert result["annotationsLeveled"][0].startswith("manifest:org.opencontainers.image.created=")

    def test_unknown_input_key_is_rejected(self) -> None:
        with pytest.raises(ConfigError, match="inputs: tagz"):
            compute(BASE_CONTEXT, {"tagz": []})

    def test_wall_clock_when_now_is_missing(self) -> None:
        context = {key: value for key, value in BASE_CONTEXT.items() if key not in ("now", "commitDate")}
        created = compute(context, {})["json"]["labels"]["org.opencontainers.image.created"]
        assert created.endswith("Z")
        assert len(created) == len("2020-01-10T00:30:00.000Z")
        assert created > "2025"
