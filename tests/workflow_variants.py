"""The configs the GitHub workflow tests render (tests/test_workflow_github.py) and the validator
tests lint (tests/test_workflow_validators.py): generator variants written here, and the examples."""

from __future__ import annotations

from pathlib import Path

from splitbuild.config import Config, parse_config

# Configs that between them use every generator feature; the validator tests run the linters on
# each of them too.
VARIANTS: dict[str, str] = {
    "minimal-ghcr": """
[image]
names = ["ghcr.io/acme/one"]
platforms = ["linux/amd64"]
""",
    "dockerhub-qemu": """
[image]
names = ["acme/app"]
platforms = ["linux/amd64", "linux/s390x", "linux/riscv64"]
[ci]
binfmt-image = "tonistiigi/binfmt:qemu-v10.0.4"
qemu-timeout-minutes = 240
""",
    "quay-registry-cache": """
[image]
names = ["quay.io/acme/app", "ghcr.io/acme/app"]
platforms = ["linux/amd64", "linux/arm64"]
context = "app"
dockerfile = "app/Containerfile"
target = "release"
[image.build-args]
GO_VERSION = "1.24"
COMMIT_NOTE = "quotes ' and \\" and $dollar"
[image.build-contexts]
base = "docker-image://alpine:3.20"
[image.secrets]
npm = "NPM_TOKEN"
"pip.conf" = "PIP_CONF"
[image.labels]
"org.opencontainers.image.title" = "App"
[tags]
rules = ["type=raw,value=edge"]
[ci]
pull-requests = false
cache = "registry"
cache-mode = "min"
provenance = false
sbom = true
install = "splitbuild @ git+https://example.invalid/acme/splitbuild@main"
python-version = "3.13"
[ci.logins."quay.io"]
username = "acme+ci"
password-secret = "QUAY_TOKEN"
""",
    "self-hosted-default": """
[image]
names = ["ghcr.io/acme/app"]
platforms = ["linux/amd64", "linux/arm/v6", "linux/arm/v7", "linux/arm64"]
[runners]
default = ["self-hosted", "linux", "X64"]
"linux/arm" = { labels = ["self-hosted", "pi-farm"], arch = "arm64" }
"linux/arm64" = ["self-hosted", "linux", "ARM64"]
[ci]
cache = "none"
merge-runner = ["self-hosted", "linux", "x64"]
timeout-minutes = 30
""",
    "schedule-only": """
[image]
names = ["ghcr.io/acme/nightly"]
platforms = ["linux/amd64", "linux/arm64"]
[ci]
branches = []
tags = []
pull-requests = false
workflow-dispatch = false
schedule = ["17 3 * * *", "0 12 * * 6"]
""",
    "ghcr-pat-local": """
[image]
names = ["ghcr.io/acme/app", "localhost:5000/acme/app"]
platforms = ["linux/amd64"]
annotations = ["index:org.opencontainers.image.url=https://example.invalid", "manifest-descriptor:x=y"]
[ci.logins]
"localhost:5000" = false
[ci.logins."ghcr.io"]
username-var = "GHCR_USER"
password-secret = "GHCR_PAT"
""",
    "amd64-emulated-on-arm": """
[image]
names = ["ghcr.io/acme/app"]
platforms = ["linux/amd64", "linux/arm64"]
[runners]
"linux/amd64" = "ubuntu-24.04-arm"
""",
    "checks-trivy": """
[image]
names = ["ghcr.io/acme/app"]
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
cache = "registry"
""",
    "checks-grype": """
[image]
names = ["docker.io/acme/app"]
platforms = ["linux/amd64", "linux/arm64"]
[scan]
scanner = "grype"
severity = "critical"
allow-list = ".grype.yaml"
""",
    "test-only": """
[image]
names = ["ghcr.io/acme/app"]
platforms = ["linux/amd64"]
[test]
command = ["/app", "--health"]
""",
    "sign-only": """
[image]
names = ["quay.io/acme/app", "localhost:5000/acme/app", "nginx"]
platforms = ["linux/amd64", "linux/s390x"]
[ci]
provenance = false
sign = "cosign"
[ci.logins]
"localhost:5000" = false
[ci.logins."quay.io"]
username = "acme+ci"
password-secret = "QUAY_TOKEN"
""",
    "optional-platforms": """
[image]
names = ["ghcr.io/acme/app"]
platforms = ["linux/amd64", "linux/arm64", "linux/riscv64"]
optional-platforms = ["linux/riscv64", "linux/arm64"]
[ci]
cache = "none"
""",
    "previews": """
[image]
names = ["ghcr.io/acme/app", "quay.io/acme/app"]
platforms = ["linux/amd64", "linux/arm64"]
optional-platforms = ["linux/arm64"]
[ci]
previews = true
cache = "registry"
[ci.logins."quay.io"]
username = "acme+ci"
password-secret = "QUAY_TOKEN"
""",
    "attest-only": """
[image]
names = ["ghcr.io/acme/app"]
platforms = ["linux/amd64"]
[ci]
pull-requests = false
provenance = false
attest = true
""",
}

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = ("ghcr-two-platforms", "five-platforms", "self-hosted", "signed")
"""Example projects (examples/NAME/splitbuild.toml) rendered and linted with the variants."""


def load_variant(name: str) -> Config:
    """The config of variant ``name``, or of the example project ``name``."""
    if name in VARIANTS:
        return parse_config(VARIANTS[name], f"{name}.toml")
    return parse_config((REPO / "examples" / name / "splitbuild.toml").read_text(), name)
