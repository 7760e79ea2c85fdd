"""Tag templates and rule keys are validated early, by one validator (issue 15): an unknown
variable, function or rule key is a one-line error with a did-you-mean suggestion (exit 3) at
config load (``generate``, ``plan``), in ``tags`` and before ``merge`` computes anything."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from splitbuild.cli.app import make_app
from splitbuild.config import parse_config
from splitbuild.errors import ConfigError
from splitbuild.tags import Context, Inputs, compute_metadata
from splitbuild.tags.expressions import global_scope, schedule_scope
from splitbuild.tags.resolve import resolve
from splitbuild.tags.rules import RULE_KEYS, RuleType
from splitbuild.tags.semver import parse_semver
from splitbuild.tags.validate import GLOBAL_NAMES, PEP440_NAMES, SCHEDULE_NAMES, SEMVER_NAMES

SHA = "0123456789abcdef0123456789abcdef01234567"
TAG_PUSH = Context.from_mapping({"eventName": "push", "ref": "refs/tags/v1.2.3", "sha": SHA})
BASE = '[image]\nnames = ["ghcr.io/acme/app"]\nplatforms = ["linux/amd64"]\n'

REFUSED = [
    (
        "type=semver,pattern={{verison}}",
        "unknown variable {{verison}} in pattern; did you mean {{version}}?",
    ),
    ("type=pep440,pattern={{majr}}", "unknown variable {{majr}} in pattern; did you mean {{major}}?"),
    ("type=semver,pattern={{branch}}", "unknown variable {{branch}} in pattern (known: {{raw}}, {{version}}"),
    ("type=raw,value={{brnach}}", "unknown variable {{brnach}} in value; did you mean {{branch}}?"),
    ("type=raw,value={{version}}", "unknown variable {{version}} in value (known: {{branch}}, {{tag}}"),
    ("type=raw,value=x,prefix={{shaa}}-", "unknown variable {{shaa}} in prefix; did you mean {{sha}}?"),
    ("type=raw,value={{upper tag}}", "unknown function {{upper}} in value (known:"),
    ("type=raw,value={{lookup (uper tag) 0}}", "unknown function {{uper}} in value"),
    ("type=raw,value={{../tag}}", "unknown variable {{../tag}} in value"),
    ("type=raw,value={{@index}}", "unknown variable {{@index}} in value"),
    (
        "type=schedule,pattern={{sha}}",
        "unknown variable {{sha}} in pattern (known: {{date}}, {{commit_date}})",
    ),
    ("type=ref,event=branch,enable={{is_default_brnch}}", "did you mean {{is_default_branch}}?"),
    ("type=semver,pattern={{version}},prefx=v", "unknown key 'prefx' for type=semver; did you mean prefix?"),
    ("type=raw,value=x,prioriy=1", "unknown key 'prioriy' for type=raw; did you mean priority?"),
    ("type=sha,fromat=long", "unknown key 'fromat' for type=sha; did you mean format?"),
    ("type=edge,brnch=main", "unknown key 'brnch' for type=edge; did you mean branch?"),
    ("type=ref,event=tag,pattern={{version}}", "unknown key 'pattern' for type=ref (known: event, enable"),
    ("type=match,pattern=v(.*),grop=1", "unknown key 'grop' for type=match; did you mean group?"),
]
ACCEPTED = [
    "type=schedule,pattern={{date 'YYYYMMDD'}}",
    "type=schedule,pattern=nightly-{{commit_date 'YYYY' tz='Asia/Tokyo'}}",
    "type=semver,pattern={{major}}.{{minor}}.{{patch}}",
    "type=semver,pattern={{raw}}",
    "type=semver,pattern={{version}}-{{prerelease}},value=v2.0.0,match=v(.*)",
    "type=pep440,pattern={{major}}.{{minor}}",
    "type=match,pattern=v(\\d+),group=1,value={{tag}}",
    "type=edge,branch=main",
    "type=ref,event=branch,enable={{is_default_branch}},suffix=-{{sha}}",
    "type=ref,event=pr,prefix=pr-{{base_ref}}-",
    "type=raw,value={{is_not_default_branch}}-{{lookup tag 0}}-{{@root.sha}}",
    "type=raw,value=latest,priority=1000",
    "type=sha,format=long,prefix=",
    "type=raw,value={{commit_date YYYY}}",  # an unquoted argument is undefined on purpose upstream
]


def compute(*rules: str, labels: tuple[str, ...] = (), flavor: tuple[str, ...] = ()) -> list[str]:
    inputs = Inputs(tags=list(rules), labels=list(labels), flavor=list(flavor))
    return list(compute_metadata(inputs, TAG_PUSH).tags)


@pytest.mark.parametrize(("rule", "message"), REFUSED)
def test_unknown_names_and_keys_refused_on_any_event(rule: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        compute(rule, "type=raw,value=ok")
    assert str(info.value).startswith(f"tag rule {rule!r}: ")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("rule", "message"), REFUSED)
def test_config_load_refuses_them(rule: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(BASE + f"[tags]\nrules = ['type=raw,value=ok', {rule!r}]\n", "splitbuild.toml")
    assert str(info.value).startswith(f"splitbuild.toml: tags.rules: tag rule {rule!r}: ")
    assert message in str(info.value)


@pytest.mark.parametrize("rule", ACCEPTED)
def test_what_the_scopes_hold_is_accepted(rule: str) -> None:
    compute(rule)
    parse_config(BASE + f"[tags]\nrules = [{rule!r}]\n")


def test_flavor_and_labels_checked_too() -> None:
    with pytest.raises(ConfigError, match=r"flavor prefix '\{\{brnch\}\}-': unknown variable .*did you mean"):
        compute("type=raw,value=x", flavor=("prefix={{brnch}}-",))
    with pytest.raises(
        ConfigError, match=r"label 'a=\{\{tga\}\}': unknown variable \{\{tga\}\} in label; did"
    ):
        compute("type=raw,value=x", labels=("a={{tga}}",))
    with pytest.raises(ConfigError, match=r"tags.flavor: flavor suffix '-\{\{sah\}\}'"):
        parse_config(BASE + "[tags]\nflavor = ['suffix=-{{sah}}']\n")
    with pytest.raises(ConfigError, match=r"tags.labels: label 'x=\{\{date\}\}'"):
        parse_config(BASE + "[tags]\nlabels = ['x={{date}}']\n")


def test_scope_lists_match_the_scopes() -> None:
    resolved = resolve(TAG_PUSH)
    assert set(GLOBAL_NAMES) == set(global_scope(resolved))
    assert set(SCHEDULE_NAMES) == set(schedule_scope(resolved))
    version = parse_semver("1.2.3-rc.1+b5")
    assert version is not None
    assert set(SEMVER_NAMES) <= set(version.render_data())
    for name in PEP440_NAMES:  # the pep440 scope is built while evaluating: each name renders
        assert compute(f"type=pep440,pattern=x{{{{{name}}}}}") != ["x"], name
    assert set(RULE_KEYS) == set(RuleType)


def test_generate_and_tags_exit_3_and_write_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "splitbuild.toml").write_text(BASE + "[tags]\nrules = ['type=semver,pattern={{verison}}']\n")
    runner = CliRunner()
    result = runner.invoke(make_app(), ["generate"])
    assert result.exit_code == 3
    assert result.stderr.count("\n") == 1
    assert "did you mean {{version}}?" in result.stderr
    assert not (tmp_path / ".github").exists()
    context = tmp_path / "context.json"
    context.write_text('{"eventName": "pull_request", "ref": "refs/pull/1/merge", "sha": "' + SHA + '"}')
    tags = runner.invoke(
        make_app(), ["tags", "--tags", "type=ref,event=pr,sufix=-x", "--context", str(context)]
    )
    assert tags.exit_code == 3
    assert "unknown key 'sufix' for type=ref; did you mean suffix?" in tags.stderr
    assert tags.stdout == ""
