"""splitbuild.tags.targets: merge targets from metadata-action rules, annotations returned."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from splitbuild.errors import ConfigError, UsageError
from splitbuild.tags import RuleTargets, rule_targets

SHA = "0123456789abcdef0123456789abcdef01234567"
COMMIT_DATE = "2026-11-20T10:00:00+01:00"
CREATED = {"org.opencontainers.image.created": "2026-11-20T09:00:00.000Z"}


def _context(tmp_path: Path, ref: str) -> Path:
    path = tmp_path / "context.json"
    path.write_text(
        json.dumps(
            {"eventName": "push", "ref": ref, "sha": SHA, "commitDate": COMMIT_DATE, "repo": {"name": "app"}}
        )
    )
    return path


def test_targets_from_a_context_file(tmp_path: Path) -> None:
    found = rule_targets(
        ["ghcr.io/acme/app", "quay.io/acme/app"],
        ["type=semver,pattern={{version}}"],
        context_file=_context(tmp_path, "refs/tags/v1.2.3"),
    )
    assert set(found.targets) == {
        "ghcr.io/acme/app:1.2.3",
        "ghcr.io/acme/app:latest",
        "quay.io/acme/app:1.2.3",
        "quay.io/acme/app:latest",
    }
    # Only the order key: the commit's date (UTC), whatever the run's time.
    assert found.annotations == CREATED


def test_label_annotations_are_returned_not_written_anywhere(tmp_path: Path) -> None:
    context = _context(tmp_path, "refs/tags/v1.2.3")
    found = rule_targets(
        ["ghcr.io/acme/app"],
        ["type=semver,pattern={{version}}"],
        labels=["org.opencontainers.image.vendor=Acme"],
        context_file=context,
        label_annotations=True,
    )
    assert found.annotations["org.opencontainers.image.version"] == "1.2.3"
    assert found.annotations["org.opencontainers.image.vendor"] == "Acme"
    assert found.annotations["org.opencontainers.image.revision"] == SHA
    # The label's created is the run's time; the index's is the commit's (it orders the indexes).
    assert found.annotations["org.opencontainers.image.created"] == "2026-11-20T09:00:00.000Z"
    again = rule_targets(["ghcr.io/acme/app"], ["type=semver,pattern={{version}}"], context_file=context)
    assert again == RuleTargets(targets=again.targets, annotations=CREATED)


def test_targets_from_the_given_environment() -> None:
    env = {
        "GITLAB_CI": "true",
        "CI_COMMIT_SHA": SHA,
        "CI_COMMIT_BRANCH": "main",
        "CI_PIPELINE_SOURCE": "push",
    }
    found = rule_targets(["registry.example.com/g/app"], ["type=ref,event=branch"], env=env)
    assert found.targets == ("registry.example.com/g/app:main",)


def test_an_empty_environment_is_not_replaced_by_the_process_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    with pytest.raises(ConfigError, match="no CI context"):
        rule_targets(["ghcr.io/acme/app"], ["type=ref,event=branch"], env={})


def test_no_tag_is_a_usage_error(tmp_path: Path) -> None:
    message = "the tag rules give no tag for this push event; nothing to publish"
    with pytest.raises(UsageError, match=re.escape(message)):
        rule_targets(
            ["ghcr.io/acme/app"], ["type=ref,event=pr"], context_file=_context(tmp_path, "refs/heads/main")
        )
