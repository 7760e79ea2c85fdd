"""``splitbuild.toml``: defaults, validation, and errors that name the file, the key and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from splitbuild._version import __version__
from splitbuild.config import DEFAULT_TAG_RULES, LoginConfig, image_registry, load_config, parse_config
from splitbuild.errors import ConfigError, InvalidInput
from splitbuild.planner import RunnerOverride

REPO = Path(__file__).resolve().parent.parent
BASE = '[image]\nnames = ["ghcr.io/acme/app"]\nplatforms = ["linux/amd64", "linux/arm64"]\n'


def test_minimal_config_defaults() -> None:
    config = parse_config(BASE)
    assert config.image.context == "."
    assert config.image.dockerfile is None
    assert config.image.build_args == {}
    assert config.tags.rules == list(DEFAULT_TAG_RULES)
    assert config.tags.flavor == []
    assert config.runners == {}
    ci = config.ci
    assert ci.provider == "github"
    assert (ci.branches, ci.tags, ci.pull_requests, ci.workflow_dispatch) == (["main"], ["v*"], True, True)
    assert (ci.timeout_minutes, ci.qemu_timeout_minutes, ci.merge_timeout_minutes) == (60, 180, 15)
    assert (ci.cache, ci.cache_mode, ci.provenance, ci.sbom) == ("gha", "max", "min", False)
    assert (ci.sign, ci.attest) == (False, False)
    assert ci.install == f"splitbuild=={__version__}"
    assert ci.merge_runner_labels == ("ubuntu-24.04",)
    assert config.registries == ("ghcr.io",)


def test_signing_keys() -> None:
    config = parse_config(BASE + '[ci]\nsign = "cosign"\nattest = true\n')
    assert (config.ci.sign, config.ci.attest) == ("cosign", True)
    assert parse_config(BASE + "[ci]\nsign = false\n").ci.sign is False
    signed = load_config(REPO / "examples" / "signed" / "splitbuild.toml").ci
    assert (signed.provenance, signed.sbom, signed.sign, signed.attest) == ("max", True, "cosign", True)


def test_platforms_are_normalized() -> None:
    config = parse_config(
        BASE.replace('"linux/amd64", "linux/arm64"', '"linux/x86_64", "linux/arm64/v8", "linux/arm"')
    )
    assert config.image.platforms == ["linux/amd64", "linux/arm64", "linux/arm/v7"]


def test_optional_platforms_are_normalized_and_split_from_the_required() -> None:
    config = parse_config(
        BASE.replace('"linux/arm64"]', '"linux/arm64", "linux/riscv64"]')
        + 'optional-platforms = ["linux/aarch64", "linux/riscv64"]\n'
    )
    assert config.image.optional_platforms == ["linux/arm64", "linux/riscv64"]
    assert config.image.required_platforms == ["linux/amd64"]
    assert parse_config(BASE).image.optional_platforms == []
    assert parse_config(BASE).image.required_platforms == ["linux/amd64", "linux/arm64"]


def test_full_config() -> None:
    config = parse_config(
        BASE
        + """context = "app"
dockerfile = "app/Dockerfile"
target = "prod"
annotations = ["index:a=b"]
[image.build-args]
A = "1"
[image.build-contexts]
base = "docker-image://alpine:3.20"
[image.secrets]
"npm.token" = "NPM_TOKEN"
[image.labels]
"org.opencontainers.image.title" = "App"
[tags]
rules = ["type=sha"]
flavor = ["latest=false"]
labels = ["a=b"]
[runners]
"linux/arm64" = "ubuntu-22.04-arm"
"linux" = { labels = ["self-hosted", "big"], arch = "x86_64" }
[ci]
name = "images"
schedule = ["0 4 * * 1"]
cache = "registry"
provenance = false
sbom = true
merge-runner = ["self-hosted", "linux"]
[ci.logins."quay.io"]
username-secret = "QUAY_USER"
password-secret = "QUAY_TOKEN"
"""
    )
    assert config.image.secrets == {"npm.token": "NPM_TOKEN"}
    assert config.runners == {
        "linux/arm64": RunnerOverride(("ubuntu-22.04-arm",)),
        "linux": RunnerOverride(("self-hosted", "big"), arch="amd64"),
    }
    assert config.ci.provenance is False
    assert config.ci.merge_runner_labels == ("self-hosted", "linux")
    login = config.ci.logins["quay.io"]
    assert isinstance(login, LoginConfig)
    assert (login.username, login.username_var, login.username_secret) == (None, None, "QUAY_USER")
    assert login.password_secret == "QUAY_TOKEN"
    assert config.registries == ("ghcr.io", "quay.io")


@pytest.mark.parametrize("name", ["ghcr-two-platforms", "five-platforms", "self-hosted", "signed"])
def test_example_configs_load(name: str) -> None:
    config = load_config(REPO / "examples" / name / "splitbuild.toml")
    assert config.image.names


ERRORS = [
    # (TOML appended to or replacing the base, the message after "splitbuild.toml: ")
    ("[foo]\n", "unknown key 'foo' (allowed: image, tags, runners, ci, test, scan)"),
    ("[ci]\ncahce = 'gha'\n", "ci: unknown key 'cahce' (allowed: provider, name, branches,"),
    ("[tags]\nrule = []\n", "tags: unknown key 'rule' (allowed: rules, flavor, labels)"),
    ("[ci]\ncache = 's3'\n", "ci.cache: must be 'gha', 'registry' or 'none'"),
    ("[ci]\nprovenance = true\n", "ci.provenance: must be 'min', 'max' or false"),
    ("[ci]\nprovider = 'circleci'\n", "ci.provider: must be 'github', 'gitlab' or 'forgejo'"),
    ("[ci]\ntimeout-minutes = '60'\n", "ci.timeout-minutes: must be an integer"),
    ("[ci]\ntimeout-minutes = 0\n", "ci.timeout-minutes: value should be greater than or equal to 1"),
    ("[ci]\npull-requests = 'yes'\n", "ci.pull-requests: must be true or false"),
    ("[ci]\nbranches = 'main'\n", "ci.branches: must be a list"),
    ("[ci]\nschedule = ['daily']\n", "ci.schedule: schedule 'daily' must be a cron expression with 5 fields"),
    (
        "[ci]\npython-version = '3.9'\n",
        "ci.python-version: python-version '3.9': splitbuild needs Python 3.11",
    ),
    ("[ci]\npython-version = 'latest'\n", "ci.python-version: python-version 'latest' must look like 3.12"),
    (
        "[ci]\nbranches = []\ntags = []\npull-requests = false\nworkflow-dispatch = false\n",
        "ci: no trigger: set branches, tags, pull-requests, workflow-dispatch or schedule",
    ),
    ("[ci]\ninstall = ''\n", "ci.install: must not be empty"),
    ("[ci.logins]\n'quay.io' = true\n", "ci.logins: 'quay.io' must be a table (username or"),
    ("[ci.logins.'quay.io']\npassword-secret = 'X'\n", 'ci.logins."quay.io": give exactly one of username,'),
    (
        "[ci.logins.'quay.io']\nusername = 'u'\npassword-secret = 'my-token'\n",
        "ci.logins.\"quay.io\".password-secret: name 'my-token' is not a valid GitHub Actions name",
    ),
    (
        "[ci.logins.'quay.io']\nusername = 'u'\npassword-secret = 'GITHUB_PAT'\n",
        "names starting with GITHUB_ are reserved",
    ),
    (
        "[ci.logins.'quay.io']\nusername = 'u'\n",
        'ci.logins."quay.io".password-secret: required key is missing',
    ),
    ("[ci.logins.'https://quay.io']\nusername = 'u'\npassword-secret = 'X'\n", "must be a registry host"),
    (
        "[ci.logins.'docker.io']\nusername = 'u'\npassword-secret = 'X'\n"
        "[ci.logins.'index.docker.io']\nusername = 'u'\npassword-secret = 'X'\n",
        "registry 'docker.io' has two logins",
    ),
    ("[runners]\n'linux/s390x' = 'x'\n", "[runners] key 'linux/s390x' matches none of image.platforms"),
    ("[runners]\n'linux/arm64' = 3\n", 'runners."linux/arm64": a runner is a label, a list of labels'),
    ("[runners]\n'linux/arm64' = []\n", 'runners."linux/arm64": a runner is a label'),
    ("[runners]\n'linux/arm64' = 'macos-15'\n", "runner 'macos-15' cannot build Linux container images"),
    ("[runners]\n'linux/arm64' = { arch = 'arm64' }\n", "a runner table needs labels"),
    ("[runners]\n'linux/arm64' = { labels = 'x', arch = 'z80' }\n", "unknown architecture 'z80'"),
    (
        "[runners]\n'linux/arm64' = { labels = 'x', os = 'linux' }\n",
        "unknown key 'os' (allowed: labels, arch)",
    ),
    ("[runners]\n'linux/sparc' = 'x'\n", "runners: key 'linux/sparc': unknown architecture 'sparc'"),
    (
        "[runners]\n'linux/arm64' = 'a'\n'linux/aarch64' = 'b'\n",
        "runners: keys 'linux/arm64' and 'linux/aarch64' both mean 'linux/arm64'",
    ),
    ("[image.build-args]\n'A-B' = '1'\n", "image.build-args: build-arg name 'A-B' must be letters"),
    (
        '[image.build-args]\nA = "1\\n--no-cache"\n',
        "image.build-args.A: holds a line break (U+000A); config values must be single lines",
    ),
    ("[image.build-args]\nA = 1\n", "image.build-args.A: must be a string"),
    ("[image.secrets]\nnpm = 'npm token'\n", "image.secrets: secret npm: Actions secret name 'npm token'"),
    ("[image.secrets]\n'a b' = 'X'\n", "image.secrets: secret id 'a b' must be"),
    ("[image.labels]\n' x' = 'y'\n", "image.labels: label key ' x' is not valid"),
    ("[image.build-contexts]\nbase = ''\n", "image.build-contexts: build-context 'base' needs a name"),
    (
        '[tags]\nrules = ["type=sha\\ntype=ref,event=tag"]\n',
        "tags.rules[0]: holds a line break (U+000A); config values must be single lines",
    ),
    ("[tags]\nflavor = [' ']\n", "tags.flavor: empty rule"),
    ("[tags]\nrules = ['type=foo']\n", "tags.rules: invalid tag rule 'type=foo': unknown type 'foo'"),
    (
        "[tags]\nrules = ['type=semver']\n",
        "tags.rules: invalid tag rule 'type=semver': type=semver needs a pattern",
    ),
    ("[tags]\nrules = ['# x']\n", "tags.rules: tag rule '# x': one rule per list item"),
    ("[tags]\nflavor = ['latest=maybe']\n", "tags.flavor: invalid flavor entry 'latest=maybe'"),
    (
        "[image.labels]\nX = '${{ github.actor }}'\n",
        "image.labels.X: GitHub expressions (${{ ... }}) are not",
    ),
    ("[image.build-args]\n'${{ x }}' = '1'\n", 'image.build-args."${{ x }}": GitHub expressions'),
    ("[ci]\nbranches = ['${{ github.ref }}']\n", "ci.branches[0]: GitHub expressions"),
    ("[ci]\nsign = 'sigstore'\n", "ci.sign: must be 'cosign' or false"),
    ("[ci]\nsign = true\n", "ci.sign: must be 'cosign' or false"),
    ("[ci]\nattest = 'yes'\n", "ci.attest: must be true or false"),
]


@pytest.mark.parametrize(("extra", "message"), ERRORS)
def test_errors_name_file_key_and_what_is_allowed(extra: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(BASE + extra, "ci/splitbuild.toml")
    assert str(info.value).startswith("ci/splitbuild.toml: "), str(info.value)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, InvalidInput)
    assert info.value.exit_code == 3


IMAGE_ERRORS = [
    ("names = []\nplatforms = ['linux/amd64']", "image.names: must not be empty"),
    ("platforms = ['linux/amd64']", "image.names: required key is missing"),
    ("names = ['a/b']", "image.platforms: required key is missing"),
    ("names = ['a/b']\nplatforms = []", "image.platforms: must not be empty"),
    ("names = 'a/b'\nplatforms = ['linux/amd64']", "image.names: must be a list"),
    (
        "names = ['ghcr.io/a/b:latest']\nplatforms = ['linux/amd64']",
        "image.names: image name 'ghcr.io/a/b:latest': give",
    ),
    ("names = ['ghcr.io/a/b@sha256:00']\nplatforms = ['linux/amd64']", "without a tag or digest"),
    ("names = ['ghcr.io/Acme/app']\nplatforms = ['linux/amd64']", "invalid path component 'Acme'"),
    ("names = ['a/b', 'a/b']\nplatforms = ['linux/amd64']", "image name 'a/b' is listed twice"),
    ("names = ['bad_host.io:x/a']\nplatforms = ['linux/amd64']", "invalid registry host 'bad_host.io:x'"),
    (
        "names = ['quay.io/a/b']\nplatforms = ['linux/amd64']",
        "image name 'quay.io/a/b': no login for registry",
    ),
    (
        "names = ['a/b']\nplatforms = ['linux/amd64', 'linux/x86_64']",
        "platform 'linux/x86_64' is listed twice",
    ),
    (
        "names = ['a/b']\nplatforms = ['arm64']",
        "image.platforms: malformed platform 'arm64' (expected os/arch",
    ),
    ("names = ['a/b']\nplatforms = ['linux/arm65']", "unknown architecture 'arm65' (allowed: 386, amd64,"),
    ("names = ['a/b']\nplatforms = ['windows/amd64']", "only linux images can be built on CI runners"),
    (
        "names = ['a/b']\nplatforms = ['linux/amd64']\ncontext = '/abs'",
        "image.context: context '/abs' must be",
    ),
    (
        "names = ['a/b']\nplatforms = ['linux/amd64']\ndockerfile = ''",
        "image.dockerfile: dockerfile '' must be",
    ),
    ("names = ['a/b']\nplatforms = ['linux/amd64']\ntarget = 'a b'", "image.target: target 'a b' is not"),
    ("names = ['a/b']\nplatforms = ['linux/amd64']\nannotations = ['novalue']", "annotation 'novalue' must"),
    (
        "names = ['a/b']\nplatforms = ['linux/amd64']\nname = 'x'",
        "image: unknown key 'name' (allowed: names,",
    ),
    (
        "names = ['a/b']\nplatforms = ['linux/amd64', 'linux/arm64']\noptional-platforms = ['linux/s390x']",
        "image.optional-platforms: linux/s390x not in platforms (linux/amd64, linux/arm64)",
    ),
    (
        "names = ['a/b']\nplatforms = ['linux/amd64', 'linux/arm64']\n"
        "optional-platforms = ['linux/arm64', 'linux/amd64']",
        "image.optional-platforms: every platform is optional; at least one platform must be required",
    ),
    (
        "names = ['a/b']\nplatforms = ['linux/amd64', 'linux/arm64']\n"
        "optional-platforms = ['linux/arm64', 'linux/aarch64']",
        "optional platform 'linux/aarch64' is listed twice (as linux/arm64)",
    ),
    (
        "names = ['a/b']\nplatforms = ['linux/amd64']\noptional-platforms = ['arm64']",
        "image.optional-platforms: malformed platform 'arm64'",
    ),
]


@pytest.mark.parametrize(("image", "message"), IMAGE_ERRORS)
def test_image_errors(image: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(f"[image]\n{image}\n")
    assert str(info.value).startswith("splitbuild.toml: ")
    assert message in str(info.value)


def test_other_top_level_shapes() -> None:
    with pytest.raises(ConfigError, match=r"^splitbuild.toml: image: must be a table, not int$"):
        parse_config("image = 3\n")
    with pytest.raises(ConfigError, match=r"^splitbuild.toml: image: required key is missing$"):
        parse_config("")
    with pytest.raises(ConfigError, match=r"^x.toml: invalid TOML: .*line 1"):
        parse_config("[image\n", "x.toml")


def test_several_errors_are_counted() -> None:
    with pytest.raises(ConfigError, match=r"\(and 1 more\)$"):
        parse_config(BASE + "[ci]\ncache = 's3'\nsbom = 'yes'\n")


def test_load_config_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "cfg.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: config file not found"
    assert info.value.hint is not None
    assert "splitbuild init" in info.value.hint
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)
    path.write_text(BASE + "[ci]\nsbom = 1\n")
    with pytest.raises(ConfigError, match=rf"^{path}: ci.sbom: must be true or false$"):
        load_config(path)
    path.write_text(BASE)
    assert load_config(path).image.names == ["ghcr.io/acme/app"]


@pytest.mark.parametrize(
    ("name", "registry"),
    [
        ("ghcr.io/acme/app", "ghcr.io"),
        ("acme/app", "docker.io"),
        ("app", "docker.io"),
        ("docker.io/acme/app", "docker.io"),
        ("index.docker.io/acme/app", "docker.io"),
        ("localhost/app", "localhost"),
        ("localhost:5000/app", "localhost:5000"),
        ("Registry.Example.com:443/a/b", "registry.example.com:443"),
    ],
)
def test_image_registry(name: str, registry: str) -> None:
    assert image_registry(name) == registry


def test_docker_hub_needs_no_login_table_and_false_skips_a_login() -> None:
    config = parse_config(
        "[image]\nnames = ['acme/app', 'localhost:5000/acme/app']\nplatforms = ['linux/amd64']\n"
        "[ci.logins]\n'localhost:5000' = false\n"
    )
    assert config.registries == ("docker.io", "localhost:5000")
    assert config.ci.logins == {"localhost:5000": False}


def test_login_hosts_are_normalized() -> None:
    config = parse_config(BASE + "[ci.logins.'Index.Docker.io']\nusername-var = 'U'\npassword-secret = 'P'\n")
    assert list(config.ci.logins) == ["docker.io"]
    assert config.registries == ("ghcr.io", "docker.io")


def test_config_is_frozen() -> None:
    config = parse_config(BASE)
    with pytest.raises(ValueError, match="frozen"):
        config.image.context = "x"  # type: ignore[misc]
