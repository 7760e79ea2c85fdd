"""The CI context: GitHub Actions, GitLab CI (mapped onto GitHub events) and JSON context files."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from splitbuild.errors import ConfigError
from splitbuild.tags import Context, Inputs, compute_metadata, resolve_context
from splitbuild.tags.gitlab_env import gitlab_event_name

SHA = "5f3331d7f7044c18ca9f12c77d961c4d7cf3276a"
NOW = datetime(2024, 11, 20, 12, 0, tzinfo=UTC)


def tags_for(context: Context, rules: list[str], **inputs: Any) -> list[str]:
    metadata = compute_metadata(Inputs(tags=rules, **inputs), context, clock=NOW)
    return metadata.tag_names


class TestGitHub:
    def payload_file(self, tmp_path: Path, payload: dict[str, Any]) -> str:
        path = tmp_path / "event.json"
        path.write_text(json.dumps(payload), encoding="utf-8")
        return str(path)

    def test_push_with_payload(self, tmp_path: Path) -> None:
        payload = {
            "ref": "refs/heads/main",
            "commits": [{"id": SHA, "timestamp": "2024-11-13T13:42:28+01:00"}],
            "repository": {
                "name": "app",
                "description": "An app",
                "html_url": "https://github.com/org/app",
                "license": {"spdx_id": "Apache-2.0"},
                "default_branch": "main",
                "owner": {"login": "org"},
            },
        }
        env = {
            "GITHUB_ACTIONS": "true",
            "GITHUB_EVENT_NAME": "push",
            "GITHUB_REF": "refs/heads/main",
            "GITHUB_SHA": SHA,
            "GITHUB_EVENT_PATH": self.payload_file(tmp_path, payload),
            "DOCKER_METADATA_SHORT_SHA_LENGTH": "10",
            "UNRELATED": "x",
        }
        context = Context.from_environment(env)
        assert context.default_branch == "main"
        assert context.env == {"DOCKER_METADATA_SHORT_SHA_LENGTH": "10"}
        metadata = compute_metadata(
            Inputs(
                images=["ghcr.io/org/app"],
                tags=["type=edge", "type=sha", "type=raw,{{commit_date 'YYYYMMDD-HHmm'}}"],
            ),
            context,
            clock=NOW,
        )
        assert metadata.tag_names == ["edge", "20241113-1242", "sha-5f3331d7f7"]
        assert metadata.labels["org.opencontainers.image.licenses"] == "Apache-2.0"
        assert metadata.labels["org.opencontainers.image.description"] == "An app"
        assert metadata.labels["org.opencontainers.image.created"] == "2024-11-20T12:00:00.000Z"

    def test_without_payload_repository(self, tmp_path: Path) -> None:
        env = {
            "GITHUB_ACTIONS": "true",
            "GITHUB_EVENT_NAME": "schedule",
            "GITHUB_REF": "refs/heads/trunk",
            "GITHUB_SHA": SHA,
            "GITHUB_REPOSITORY": "org/app",
            "GITHUB_SERVER_URL": "https://ghe.example.com",
            "GITHUB_EVENT_PATH": str(tmp_path / "missing.json"),
        }
        context = Context.from_environment(env)
        assert context.payload == {}
        assert context.repo.name == "app"
        assert context.repo.html_url == "https://ghe.example.com/org/app"
        assert context.default_branch == "trunk"
        assert tags_for(context, ["type=edge", "type=schedule"]) == ["nightly", "edge"]

    def test_commit_date_falls_back_to_now(self) -> None:
        env = {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request", "GITHUB_SHA": SHA}
        context = Context.from_environment(env)
        assert tags_for(context, ["type=raw,{{commit_date 'YYYYMMDD'}}"]) == ["20241120"]

    @pytest.mark.parametrize("missing", ["GITHUB_EVENT_NAME", "GITHUB_SHA"])
    def test_missing_variables(self, missing: str) -> None:
        env = {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "push", "GITHUB_SHA": SHA}
        del env[missing]
        with pytest.raises(ConfigError, match=f"GitHub Actions context incomplete: {missing} not set"):
            Context.from_environment(env)

    def test_unreadable_payload(self, tmp_path: Path) -> None:
        path = tmp_path / "event.json"
        path.write_text("{not json", encoding="utf-8")
        env = {
            "GITHUB_ACTIONS": "true",
            "GITHUB_EVENT_NAME": "push",
            "GITHUB_SHA": SHA,
            "GITHUB_EVENT_PATH": str(path),
        }
        with pytest.raises(ConfigError, match=r"GITHUB_EVENT_PATH .* is not a readable JSON file"):
            Context.from_environment(env)

    def test_no_ci(self) -> None:
        with pytest.raises(ConfigError, match="neither GITHUB_ACTIONS=true nor GITLAB_CI=true") as info:
            Context.from_environment({"CI": "true"})
        assert info.value.hint is not None


GITLAB_BASE = {
    "GITLAB_CI": "true",
    "CI_COMMIT_SHA": SHA,
    "CI_DEFAULT_BRANCH": "main",
    "CI_PROJECT_NAME": "app",
    "CI_PROJECT_DESCRIPTION": "An app",
    "CI_PROJECT_URL": "https://gitlab.com/org/app",
    "CI_COMMIT_TIMESTAMP": "2024-11-13T13:42:28+00:00",
}
DEFAULT_RULES: list[str] = []


class TestGitLab:
    def context(self, **env: str) -> Context:
        return Context.from_environment({**GITLAB_BASE, **env})

    def test_branch_push(self) -> None:
        context = self.context(CI_PIPELINE_SOURCE="push", CI_COMMIT_BRANCH="feature/x")
        assert (context.event_name, context.ref, context.sha) == ("push", "refs/heads/feature/x", SHA)
        assert tags_for(context, DEFAULT_RULES) == ["feature-x"]
        assert tags_for(context, ["type=raw,{{is_default_branch}}", "type=edge"]) == ["false"]

    def test_default_branch_push(self) -> None:
        context = self.context(CI_PIPELINE_SOURCE="push", CI_COMMIT_BRANCH="main")
        assert tags_for(context, ["type=edge", "type=raw,latest,enable={{is_default_branch}}"]) == [
            "edge",
            "latest",
        ]

    def test_tag_push(self) -> None:
        context = self.context(CI_PIPELINE_SOURCE="push", CI_COMMIT_TAG="v1.2.3", CI_COMMIT_REF_NAME="v1.2.3")
        assert context.ref == "refs/tags/v1.2.3"
        rules = ["type=semver,pattern={{version}}", "type=semver,pattern={{major}}.{{minor}}", "type=sha"]
        assert tags_for(context, rules) == ["1.2.3", "1.2", "sha-5f3331d", "latest"]
        assert tags_for(context, DEFAULT_RULES) == ["v1.2.3", "latest"]

    def test_merge_request(self) -> None:
        context = self.context(
            CI_PIPELINE_SOURCE="merge_request_event",
            CI_MERGE_REQUEST_IID="42",
            CI_MERGE_REQUEST_TARGET_BRANCH_NAME="main",
            CI_MERGE_REQUEST_SOURCE_BRANCH_SHA="abcdef0123456789",
        )
        assert (context.event_name, context.ref) == ("pull_request", "refs/pull/42/merge")
        assert context.payload["number"] == 42
        assert tags_for(context, DEFAULT_RULES) == ["pr-42"]
        assert tags_for(context, ["type=raw,to-{{base_ref}}", "type=sha"]) == ["to-main", "sha-5f3331d"]
        head = Context.from_mapping(
            {**context.to_file_data(), "env": {"DOCKER_METADATA_PR_HEAD_SHA": "true"}}
        )
        assert tags_for(head, ["type=sha"]) == ["sha-abcdef0"]

    def test_merge_request_without_source_sha_uses_commit_sha(self) -> None:
        context = self.context(CI_PIPELINE_SOURCE="merge_request_event", CI_MERGE_REQUEST_IID="7")
        assert context.payload["pull_request"]["head"]["sha"] == SHA

    def test_external_pull_request(self) -> None:
        context = self.context(
            CI_PIPELINE_SOURCE="external_pull_request_event",
            CI_COMMIT_BRANCH="feature",
            CI_EXTERNAL_PULL_REQUEST_IID="9",
            CI_EXTERNAL_PULL_REQUEST_TARGET_BRANCH_NAME="main",
        )
        assert (context.event_name, context.ref) == ("pull_request", "refs/pull/9/merge")
        assert tags_for(context, ["type=ref,event=pr", "type=ref,event=branch"]) == ["pr-9"]

    def test_schedule(self) -> None:
        context = self.context(CI_PIPELINE_SOURCE="schedule", CI_COMMIT_BRANCH="main")
        assert context.event_name == "schedule"
        assert tags_for(
            context, ["type=schedule,pattern=nightly-{{date 'YYYYMMDD'}}", "type=ref,event=branch"]
        ) == [
            "nightly-20241120",
            "main",
        ]

    @pytest.mark.parametrize(
        ("source", "event"),
        [
            ("push", "push"),
            ("", "push"),
            ("schedule", "schedule"),
            ("merge_request_event", "pull_request"),
            ("web", "workflow_dispatch"),
            ("api", "workflow_dispatch"),
            ("trigger", "workflow_dispatch"),
            ("parent_pipeline", "workflow_dispatch"),
        ],
    )
    def test_event_names(self, source: str, event: str) -> None:
        assert gitlab_event_name(source) == event

    def test_repository_and_commit_date(self) -> None:
        context = self.context(CI_COMMIT_BRANCH="main")
        assert context.commit_date == datetime(2024, 11, 13, 13, 42, 28, tzinfo=UTC)
        assert context.repo.name == "app"
        metadata = compute_metadata(Inputs(), context, clock=NOW)
        assert metadata.labels["org.opencontainers.image.source"] == "https://gitlab.com/org/app"
        assert metadata.labels["org.opencontainers.image.description"] == "An app"
        assert metadata.labels["org.opencontainers.image.licenses"] == ""

    def test_detached_pipeline_has_no_ref(self) -> None:
        context = self.context(CI_PIPELINE_SOURCE="api")
        assert context.ref == ""
        assert tags_for(context, ["type=ref,event=branch", "type=sha"]) == ["sha-5f3331d"]

    def test_errors(self) -> None:
        with pytest.raises(ConfigError, match="CI_COMMIT_SHA not set"):
            Context.from_environment({"GITLAB_CI": "true"})
        with pytest.raises(ConfigError, match="CI_MERGE_REQUEST_IID='x' is not a number"):
            self.context(CI_MERGE_REQUEST_IID="x")
        with pytest.raises(ConfigError, match="commitDate"):
            self.context(CI_COMMIT_TIMESTAMP="yesterday")


class TestContextFile:
    def test_round_trip(self, tmp_path: Path) -> None:
        context = Context.from_environment({**GITLAB_BASE, "CI_COMMIT_TAG": "v2.0.0"})
        path = tmp_path / "context.json"
        path.write_text(json.dumps(context.to_file_data()), encoding="utf-8")
        assert Context.from_file(path) == context

    def test_vector_format(self, tmp_path: Path) -> None:
        path = tmp_path / "context.json"
        data = {
            "eventName": "push",
            "ref": "refs/tags/v1.0.0",
            "sha": SHA,
            "now": "2020-01-10T09:30:00+09:00",
            "repo": {"name": "x", "license": None, "extra": 1},
        }
        path.write_text(json.dumps(data), encoding="utf-8")
        context = Context.from_file(path)
        assert context.now == datetime(2020, 1, 10, 0, 30, tzinfo=UTC)
        assert tags_for(context, ["type=raw,{{date 'HH'}}"]) == ["00"]

    @pytest.mark.parametrize(
        ("content", "message"),
        [
            ("{", "is not JSON"),
            ("[]", "must hold a JSON object"),
            ('{"evntName": "push"}', "evntName"),
            ('{"sha": 5}', "sha: Input should be a valid string"),
        ],
    )
    def test_invalid(self, tmp_path: Path, content: str, message: str) -> None:
        path = tmp_path / "context.json"
        path.write_text(content, encoding="utf-8")
        with pytest.raises(ConfigError, match=message) as info:
            Context.from_file(path)
        assert str(path) in str(info.value)

    def test_missing(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="does not exist"):
            Context.from_file(tmp_path / "nope.json")


def test_resolve_context_commit_date_from_payload() -> None:
    resolved = resolve_context(
        {
            "eventName": "push",
            "ref": "refs/heads/dev",
            "sha": SHA,
            "payload": {
                "commits": [{"id": "other", "timestamp": "2000-01-01T00:00:00Z"}],
                "head_commit": {"id": SHA, "timestamp": "2024-11-13T14:42:28+01:00"},
            },
        }
    )
    assert resolved == {"ref": "refs/heads/dev", "sha": SHA, "commitDate": "2024-11-13T13:42:28.000Z"}
