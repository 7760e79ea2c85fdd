"""``[ci] provider`` and the ``[ci.gitlab]`` / ``[ci.forgejo]`` tables: defaults that depend on
the provider, which runner table applies, default registry logins, overriding the provider at load
time, and one-line errors naming the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from splitbuild.config import declared_provider, load_config, parse_config
from splitbuild.errors import ConfigError
from splitbuild.planner import RunnerOverride

BASE = '[image]\nnames = ["docker.io/acme/app"]\nplatforms = ["linux/amd64", "linux/arm64"]\n'


def test_defaults_per_provider() -> None:
    github, gitlab, forgejo = (parse_config(BASE, provider=p) for p in ("github", "gitlab", "forgejo"))
    assert (github.ci.cache, gitlab.ci.cache, forgejo.ci.cache) == ("gha", "registry", "registry")
    assert github.ci.merge_runner_labels == ("ubuntu-24.04",)
    assert gitlab.ci.merge_runner_labels == ("saas-linux-small-amd64",)
    assert forgejo.ci.merge_runner_labels == ("ubuntu-latest",)
    gl = gitlab.ci.gitlab
    assert (gl.builder, gl.docker_image, gl.dind_image, gl.dind_mtu) == (
        "buildx",
        "docker:29-cli",
        "docker:29-dind",
        1360,
    )
    assert (gl.build_stage, gl.merge_stage, gl.ci_registry) == ("build", "deploy", "registry.gitlab.com")
    assert gitlab.ci.gitlab_python_image == "python:3.12-slim"
    assert forgejo.ci.forgejo.actions_url == "https://github.com"
    assert gitlab.ci.provenance == "min"


def test_provider_from_the_file_and_overridden_at_load(tmp_path: Path) -> None:
    path = tmp_path / "splitbuild.toml"
    path.write_text(BASE + '[ci]\nprovider = "gitlab"\n')
    assert load_config(path).ci.provider == "gitlab"
    assert load_config(path, provider="forgejo").ci.provider == "forgejo"
    assert declared_provider(path) == "gitlab"
    path.write_text(BASE)
    assert declared_provider(path) == "github"
    with pytest.raises(ConfigError, match="config file not found"):
        declared_provider(tmp_path / "missing.toml")


def test_default_logins_per_provider() -> None:
    gitlab_image = '[image]\nnames = ["registry.gitlab.com/g/p"]\nplatforms = ["linux/amd64"]\n'
    assert parse_config(gitlab_image, provider="gitlab").ci.default_logins == {
        "registry.gitlab.com",
        "docker.io",
    }
    with pytest.raises(ConfigError, match=re.escape("no login for registry 'registry.gitlab.com'")):
        parse_config(gitlab_image)
    self_managed = gitlab_image.replace("registry.gitlab.com", "registry.example.com")
    config = parse_config(
        self_managed + '[ci.gitlab]\nci-registry = "Registry.Example.com"\n', provider="gitlab"
    )
    assert config.ci.gitlab.ci_registry == "registry.example.com"
    with pytest.raises(ConfigError, match=re.escape("no login for registry 'registry.example.com'")):
        parse_config(self_managed, provider="gitlab")
    assert parse_config(BASE, provider="forgejo").ci.default_logins == {"docker.io"}


def test_runner_table_per_provider() -> None:
    text = BASE + (
        '[runners]\n"linux/arm64" = "ubuntu-24.04-arm"\n'
        '[ci.gitlab.runners]\n"linux/aarch64" = ["docker", "arm64"]\n'
        '[ci.gitlab]\nmerge-runner = ["docker", "amd64"]\n'
    )
    github = parse_config(text)
    assert github.runner_overrides == (
        "[runners]",
        {"linux/arm64": RunnerOverride(labels=("ubuntu-24.04-arm",))},
    )
    assert github.ci.merge_runner_labels == ("ubuntu-24.04",)
    gitlab = parse_config(text, provider="gitlab")
    table, overrides = gitlab.runner_overrides
    assert table == "[ci.gitlab.runners]"
    assert overrides == {"linux/arm64": RunnerOverride(labels=("docker", "arm64"))}
    assert gitlab.ci.merge_runner_labels == ("docker", "amd64")
    forgejo = parse_config(text + '[ci]\nmerge-runner = "big"\n', provider="forgejo")
    assert forgejo.runner_overrides[0] == "[runners]"
    assert forgejo.ci.merge_runner_labels == ("big",)


def test_buildah_writes_no_provenance() -> None:
    buildah = BASE + '[ci.gitlab]\nbuilder = "buildah"\n'
    assert parse_config(buildah, provider="gitlab").ci.provenance is False
    assert parse_config(buildah).ci.provenance == "min"  # GitHub ignores [ci.gitlab]
    needs_buildx = re.escape("ci: provenance 'max' needs [ci.gitlab] builder = 'buildx'")
    with pytest.raises(ConfigError, match=needs_buildx):
        parse_config(buildah + '[ci]\nprovenance = "max"\n', provider="gitlab")
    with pytest.raises(ConfigError, match="sbom = true needs"):
        parse_config(buildah + "[ci]\nsbom = true\n", provider="gitlab")
    assert parse_config(buildah + "[ci]\nprovenance = false\n", provider="gitlab").ci.provenance is False


def test_python_image_follows_python_version() -> None:
    assert parse_config(
        BASE + '[ci]\npython-version = "pypy3.11"\n', provider="gitlab"
    ).ci.gitlab_python_image == ("pypy:3.11-slim")
    config = parse_config(
        BASE + '[ci.gitlab]\npython-image = "mirror.example.com/python:3.13"\n', provider="gitlab"
    )
    assert config.ci.gitlab_python_image == "mirror.example.com/python:3.13"


ERRORS = [
    ('[ci]\nprovider = "jenkins"\n', "ci.provider: must be 'github', 'gitlab' or 'forgejo'"),
    ('[ci.gitlab]\nbuilder = "kaniko"\n', "ci.gitlab.builder: must be 'buildx' or 'buildah'"),
    (
        '[ci.gitlab]\nbuidler = "buildah"\n',
        "ci.gitlab: unknown key 'buidler' (allowed: runners, merge-runner,",
    ),
    ("[ci.gitlab]\ndind-mtu = 100\n", "ci.gitlab.dind-mtu: dind-mtu 100 is below 576"),
    (
        '[ci.gitlab]\ndocker-image = "docker 29"\n',
        "ci.gitlab.docker-image: image 'docker 29' must be an image",
    ),
    (
        '[ci.gitlab]\nci-registry = "https://x"\n',
        "ci.gitlab.ci-registry: ci-registry 'https://x' must be a registry",
    ),
    ('[ci.gitlab]\nbuild-stage = ".pre"\n', "ci.gitlab.build-stage: stage '.pre' must be letters"),
    ('[ci.gitlab.runners]\n"linux/s390x" = "x"\n', "[ci.gitlab.runners] key 'linux/s390x' matches none"),
    ('[ci.gitlab.runners]\n"linux/arm64" = "macos-14"\n', "cannot build Linux container images"),
    (
        "[ci.gitlab]\nmerge-runner = ['']\n",
        "ci.gitlab.merge-runner: needs at least one non-empty runner label",
    ),
    ('[ci.forgejo]\nrunners = "x"\n', "ci.forgejo.runners: must be a table of platform"),
    ('[ci]\ncache = "gha"\nprovider = "gitlab"\n', "ci: cache 'gha' is GitHub's cache service"),
]


@pytest.mark.parametrize(("extra", "message"), ERRORS)
def test_errors_name_the_key(extra: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(BASE + extra, "ci/splitbuild.toml")
    text = str(info.value)
    assert text.startswith("ci/splitbuild.toml: "), text
    assert message in text
    assert "\n" not in text


@pytest.mark.parametrize(
    ("provider", "sign", "attest"),
    [("github", True, True), ("gitlab", True, False), ("forgejo", False, False)],
)
def test_signing_and_attesting_per_provider(provider: str, sign: bool, attest: bool) -> None:
    for key, value, supported in (("sign", '"cosign"', sign), ("attest", "true", attest)):
        text = f"{BASE}[ci]\n{key} = {value}\n"
        if supported:
            assert getattr(parse_config(text, provider=provider).ci, key)
        else:
            with pytest.raises(
                ConfigError, match=rf"^x.toml: ci: {key} = \S+ is not supported with provider '{provider}'"
            ):
                parse_config(text, "x.toml", provider=provider)
