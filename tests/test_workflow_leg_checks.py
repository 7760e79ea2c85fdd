"""``[test]`` and ``[scan]`` in the config and in the generated GitHub, Forgejo and GitLab files:
where the steps and jobs go, what they run, what they are granted; the GitLab files pass GitLab's
schema and shellcheck (the GitHub variants are linted with the others in test_workflow_validators)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from splitbuild.config import parse_config
from splitbuild.errors import ConfigError
from splitbuild.planner import plan
from splitbuild.workflow.github import render_workflow
from splitbuild.workflow.gitlab import render_pipeline
from splitbuild.workflow.pins import all_pins
from tests.workflow_variants import load_variant

BASE = '[image]\nnames = ["ghcr.io/acme/app"]\nplatforms = ["linux/amd64", "linux/arm64"]\n'
GITLAB_BASE = BASE.replace("ghcr.io", "registry.gitlab.com")
GITLAB = {
    "buildx": """
[image]
names = ["registry.gitlab.com/acme/app"]
platforms = ["linux/amd64", "linux/arm64", "linux/riscv64"]
[image.secrets]
npm = "NPM_TOKEN"
[test]
command = "app --version"
[test.platforms]
"linux/arm64" = ["/usr/bin/app", "--self-test", "it's \\"quoted\\" $HOME `x`"]
"linux/riscv64" = false
[scan]
severity = "medium"
ignore-unfixed = true
allow-list = ".trivyignore"
[ci]
sbom = true
""",
    "buildah": """
[image]
names = ["registry.gitlab.com/acme/app"]
platforms = ["linux/amd64", "linux/arm64"]
[test]
command = ["/app", "--health"]
[scan]
severity = "critical"
[ci.gitlab]
builder = "buildah"
""",
    "optional-scan": """
[image]
names = ["registry.gitlab.com/acme/app"]
platforms = ["linux/amd64", "linux/arm64"]
optional-platforms = ["linux/arm64"]
[scan]
[ci.gitlab]
builder = "buildah"
""",
    "test-only": GITLAB_BASE + '[test]\ncommand = "true"\n',
}


def _tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    assert found, f"{name} is not installed"
    return found


def _github(name: str, provider: str | None = None) -> dict[str, Any]:
    config = load_variant(name)
    if provider is not None:
        config = config.model_copy(update={"ci": config.ci.model_copy(update={"provider": provider})})
    text = render_workflow(config, plan(config), config_path="splitbuild.toml", output_path="out.yml")
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def _gitlab(name: str) -> dict[str, Any]:
    config = parse_config(GITLAB[name], provider="gitlab")
    text = render_pipeline(config, plan(config), config_path="splitbuild.toml", output_path=".gitlab-ci.yml")
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def _steps(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["name"]: step for step in job["steps"]}


# --- config -------------------------------------------------------------------------------------


def test_test_commands_per_platform() -> None:
    config = parse_config(
        BASE + '[test]\ncommand = "hello"\n[test.platforms]\n"linux/aarch64" = ["/bin/hello", "-v"]\n'
    )
    assert config.test is not None
    assert config.test.command_for("linux/amd64") == ["/bin/sh", "-c", "hello"]
    assert config.test.command_for("linux/arm64") == ["/bin/hello", "-v"]  # the key was normalised
    skip = parse_config(BASE + '[test]\ncommand = "hello"\n[test.platforms]\n"linux/arm64" = false\n')
    assert skip.test is not None
    assert skip.test.command_for("linux/arm64") is None


def test_scan_defaults() -> None:
    config = parse_config(BASE + "[scan]\n")
    assert config.scan is not None
    assert (config.scan.scanner, config.scan.severity, config.scan.ignore_unfixed) == ("trivy", "high", False)
    assert config.scan.severities == ["high", "critical"]
    assert config.scan.scanner_version == "0.68.2"
    assert parse_config(BASE + '[scan]\nscanner = "grype"\nversion = "v0.111.0"\n').scan.scanner_version == (  # type: ignore[union-attr]
        "0.111.0"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[test]\n", "test.command: required key is missing"),
        ('[test]\ncommand = " "\n', "test.command: an empty command"),
        ("[test]\ncommand = []\n", "test.command: an argument list needs non-empty strings"),
        ("[test]\ncommand = 3\n", "test.command: must be a command line (string) or an argument list"),
        (
            '[test]\ncommand = "x"\n[test.platforms]\n"linux/s390x" = "y"\n',
            "test.platforms key 'linux/s390x'",
        ),
        ('[test]\ncommand = "x"\n[test.platforms]\n"linux/arm64" = true\n', "linux/arm64: must be a command"),
        ('[scan]\nscanner = "clair"\n', "scan.scanner: must be 'trivy' or 'grype'"),
        ('[scan]\nseverity = "HIGH"\n', "scan.severity: must be 'low', 'medium', 'high' or 'critical'"),
        ('[scan]\nallow-list = "/etc/ignore"\n', "must be a relative path inside the repository"),
        ('[scan]\nversion = "latest"\n', "must be a release number"),
        ("[scan]\nfail = true\n", "unknown key 'fail'"),
    ],
)
def test_bad_checks_are_one_line_config_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE + text)
    assert message in caught.value.message
    assert "\n" not in caught.value.message


# --- GitHub and Forgejo ---------------------------------------------------------------------------


def test_github_checks_run_between_the_set_up_and_the_push() -> None:
    jobs = _github("checks-trivy")["jobs"]
    names = [step["name"] for step in jobs["build-linux-amd64"]["steps"]]
    start = names.index("Log in to ghcr.io") + 1
    assert names[start:] == [
        "Build for the checks",
        "Smoke test",
        "Set up trivy",
        "Scan",
        "Build and push by digest",
        "Export digest",
        "Summary of the checks",
        "Upload the scan to code scanning",
    ]
    # linux/riscv64 has `false`: no smoke test there, still the scan
    riscv = _steps(jobs["build-linux-riscv64"])
    assert "Smoke test" not in riscv
    assert "Scan" in riscv
    assert "TEST_OUTCOME" not in riscv["Summary of the checks"]["env"]


def test_github_check_build_loads_the_image_locally_and_pushes_nothing() -> None:
    steps = _steps(_github("checks-trivy")["jobs"]["build-linux-arm64"])
    check, push = steps["Build for the checks"]["with"], steps["Build and push by digest"]["with"]
    assert check["load"] == "true"
    assert check["tags"] == "splitbuild-check:linux-arm64"
    assert "outputs" not in check
    assert "cache-to" not in check
    assert check["provenance"] == "false"
    assert {k: v for k, v in push.items() if k not in ("outputs", "cache-to", "provenance")} == {
        k: v for k, v in check.items() if k not in ("load", "tags", "provenance")
    }
    assert steps["Build for the checks"].get("env") == steps["Build and push by digest"].get("env")


def test_github_smoke_test_passes_each_word_through_env() -> None:
    step = _steps(_github("checks-trivy")["jobs"]["build-linux-arm64"])["Smoke test"]
    assert step["env"]["TEST_ARG_3"] == 'it\'s "quoted" $HOME `x`'
    assert step["env"]["CHECK_IMAGE"] == "splitbuild-check:linux-arm64"
    assert 'docker run --rm --platform "$PLATFORM" --entrypoint "${args[0]}"' in step["run"]
    assert "$HOME" not in step["run"]
    amd64 = _steps(_github("checks-trivy")["jobs"]["build-linux-amd64"])["Smoke test"]["env"]
    assert [amd64[f"TEST_ARG_{i}"] for i in (1, 2, 3)] == ["/bin/sh", "-c", "app --version"]


def test_github_trivy_scan_gates_at_the_threshold() -> None:
    steps = _steps(_github("checks-trivy")["jobs"]["build-linux-amd64"])
    setup = steps["Set up trivy"]
    assert setup["uses"] == all_pins()["aquasecurity/setup-trivy"].ref
    assert setup["with"]["version"] == "v0.68.2"
    scan = steps["Scan"]
    assert scan["env"]["SEVERITIES"] == "MEDIUM,HIGH,CRITICAL"
    assert scan["env"]["ALLOW_LIST"] == ".trivyignore"
    for flag in (
        "--exit-code 3",
        '--severity "$SEVERITIES"',
        "--format sarif",
        '--output "$SARIF"',
        "--ignore-unfixed",
        '--ignorefile "$ALLOW_LIST"',
    ):
        assert flag in scan["run"], flag
    upload = steps["Upload the scan to code scanning"]
    assert upload["uses"] == all_pins()["github/codeql-action/upload-sarif"].ref
    assert upload["with"] == {
        "sarif_file": "${{ runner.temp }}/splitbuild-scan.sarif",
        "category": "splitbuild-linux-amd64",
    }
    assert upload["if"].startswith("!cancelled() && steps.scan.outcome != 'skipped'")


def test_github_grype_scan() -> None:
    steps = _steps(_github("checks-grype")["jobs"]["build-linux-arm64"])
    assert steps["Set up grype"]["uses"] == all_pins()["anchore/scan-action/download-grype"].ref
    assert steps["Set up grype"]["with"] == {"grype-version": "v0.110.0"}
    scan = steps["Scan"]
    assert scan["env"]["GRYPE"] == "${{ steps.grype.outputs.cmd }}"
    assert (
        '"$GRYPE" "docker:$CHECK_IMAGE" --fail-on "$SEVERITY" --output sarif --file "$SARIF"' in scan["run"]
    )
    assert scan["env"]["SEVERITY"] == "critical"
    assert '--config "$ALLOW_LIST"' in scan["run"]
    assert "Smoke test" not in steps


def test_security_events_write_only_on_the_build_jobs_that_upload() -> None:
    jobs = _github("checks-trivy")["jobs"]
    for job_id, job in jobs.items():
        expected = "write" if job_id.startswith("build-") else None
        assert job["permissions"].get("security-events") == expected, job_id
    assert all("security-events" not in job["permissions"] for job in _github("test-only")["jobs"].values())


def test_forgejo_has_the_checks_but_no_code_scanning() -> None:
    jobs = _github("checks-trivy", provider="forgejo")["jobs"]
    steps = _steps(jobs["build-linux-amd64"])
    assert {"Smoke test", "Scan", "Summary of the checks"} <= set(steps)
    assert "Upload the scan to code scanning" not in steps
    assert all("security-events" not in job["permissions"] for job in jobs.values())


def test_no_checks_no_extra_steps() -> None:
    names = [step["name"] for step in _github("minimal-ghcr")["jobs"]["build-linux-amd64"]["steps"]]
    assert "Build for the checks" not in names
    assert "Summary of the checks" not in names


# --- GitLab -------------------------------------------------------------------------------------


def test_gitlab_pipelines_pass_the_schema_and_shellcheck(tmp_path: Path) -> None:
    files = []
    for name in GITLAB:
        path = tmp_path / f"{name}.gitlab-ci.yml"
        config = parse_config(GITLAB[name], provider="gitlab")
        path.write_text(
            render_pipeline(config, plan(config), config_path="s.toml", output_path=".gitlab-ci.yml")
        )
        files.append(path)
        for job_name, job in _gitlab(name).items():
            result = subprocess.run(
                [_tool("shellcheck"), "--shell=sh", "--severity=style", "-"],
                input="\n".join(job["script"]) + "\n",
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert result.returncode == 0, f"{name} {job_name}:\n{result.stdout}"
    argv = [_tool("check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci", *map(str, files)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_gitlab_scan_jobs_gate_the_merge() -> None:
    pipeline = _gitlab("buildx")
    scans = [name for name in pipeline if ":scan:" in name]
    assert scans == [
        "splitbuild:scan:linux/amd64",
        "splitbuild:scan:linux/arm64",
        "splitbuild:scan:linux/riscv64",
    ]
    merge = pipeline["splitbuild:merge"]
    assert [need["job"] for need in merge["needs"] if not need["artifacts"]] == scans
    scan = pipeline["splitbuild:scan:linux/arm64"]
    assert scan["image"] == {"name": "aquasec/trivy:0.68.2", "entrypoint": [""]}
    assert scan["needs"] == [{"job": "splitbuild:build:linux/arm64", "artifacts": True}]
    assert scan["artifacts"]["reports"] == {
        "container_scanning": "gl-container-scanning-report-linux-arm64.json"
    }
    assert scan["artifacts"]["when"] == "always"
    script = "\n".join(scan["script"])
    assert "--input splitbuild-linux-arm64.tar" in script
    assert '--exit-code 3 --severity "$SPLITBUILD_SEVERITIES"' in script
    assert "--ignore-unfixed" in script
    assert '--ignorefile "$SPLITBUILD_ALLOW_LIST"' in script
    assert scan["variables"]["SPLITBUILD_SEVERITIES"] == "MEDIUM,HIGH,CRITICAL"
    assert "GIT_STRATEGY" not in scan["variables"]  # the allow-list is in the repository
    assert _gitlab("buildah")["splitbuild:scan:linux/amd64"]["variables"]["GIT_STRATEGY"] == "none"
    build = pipeline["splitbuild:build:linux/arm64"]
    assert build["artifacts"]["paths"] == ["splitbuild-linux-arm64.tar"]
    assert "splitbuild:scan:linux/amd64" not in _gitlab("test-only")


def test_gitlab_buildx_tests_a_loaded_image_before_the_push_build() -> None:
    build = _gitlab("buildx")["splitbuild:build:linux/arm64"]
    script = build["script"]
    check = next(i for i, item in enumerate(script) if "--load" in item)
    test = next(i for i, item in enumerate(script) if "docker run --rm" in item and "--entrypoint" in item)
    push = next(i for i, item in enumerate(script) if "push-by-digest=true" in item)
    save = next(i for i, item in enumerate(script) if item.startswith("docker save"))
    assert check < test < save < push
    assert "--output" not in script[check]
    assert "--sbom" not in script[check]
    assert "--provenance false" in script[check]
    assert "--secret id=npm,env=NPM_TOKEN" in script[check]
    assert (
        '--entrypoint "$SPLITBUILD_TEST_1" splitbuild-check:linux-arm64 '
        '"$SPLITBUILD_TEST_2" "$SPLITBUILD_TEST_3"' in script[test]
    )
    assert build["variables"]["SPLITBUILD_TEST_3"] == {"value": 'it\'s "quoted" $HOME `x`', "expand": False}
    riscv = "\n".join(_gitlab("buildx")["splitbuild:build:linux/riscv64"]["script"])
    assert "docker run --rm --platform" not in riscv
    assert "docker save" in riscv


def test_gitlab_buildah_tests_in_a_working_container_before_the_push() -> None:
    script = _gitlab("buildah")["splitbuild:build:linux/arm64"]["script"]
    test = next(i for i, item in enumerate(script) if "buildah run" in item)
    archive = next(i for i, item in enumerate(script) if "oci-archive:splitbuild-linux-arm64.tar" in item)
    push = next(i for i, item in enumerate(script) if "buildah push --disable-compression" in item)
    assert test < archive < push
    assert 'buildah run "$splitbuild_container" -- "$SPLITBUILD_TEST_1" "$SPLITBUILD_TEST_2"' in script[test]


def test_gitlab_refuses_grype() -> None:
    config = parse_config(GITLAB_BASE + '[scan]\nscanner = "grype"\n', provider="gitlab")
    with pytest.raises(ConfigError, match=r"scan\.scanner 'grype' is not supported with provider 'gitlab'"):
        render_pipeline(config, plan(config), config_path="s.toml", output_path=".gitlab-ci.yml")
