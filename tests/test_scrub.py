"""The one scrubber (splitbuild.scrub): registered secrets in every form, control and bidi characters."""

from __future__ import annotations

import base64
from urllib.parse import quote

import pytest

from splitbuild.auth.credentials import Credential
from splitbuild.auth.tokens import Token
from splitbuild.errors import ConfigError, ErrorDetail, RegistryError
from splitbuild.scrub import MASK, register_secret, scrub, scrub_secrets
from splitbuild.store.registry import DEADLINE, RegistryClient


def test_every_form_of_a_held_credential_is_masked() -> None:
    Credential(username="deploy", password="s3cr3t/pass+word")
    pair = "deploy:s3cr3t/pass+word"
    for form in (
        "s3cr3t/pass+word",
        pair,
        base64.b64encode(pair.encode()).decode(),
        quote("s3cr3t/pass+word", safe=""),
    ):
        assert scrub(f"got <{form}> back") == f"got <{MASK}> back", form


def test_tokens_are_masked_when_issued() -> None:
    Token(value="eyJhbGciOi.payload.signature", expires_at=0, refresh_token="refresh-xyz-123")
    assert scrub("Bearer eyJhbGciOi.payload.signature and refresh-xyz-123") == f"Bearer {MASK} and {MASK}"


def test_short_values_and_words_containing_a_secret_are_left_alone() -> None:
    register_secret("abc", "auth01")
    assert scrub_secrets("abc authentication auth01x") == "abc authentication auth01x"
    assert scrub_secrets("token auth01.") == f"token {MASK}."
    register_secret("long-secret-value-1")
    assert scrub_secrets("xlong-secret-value-1x") == f"x{MASK}x"


def test_control_line_break_and_bidi_characters_become_visible_escapes() -> None:
    text = "a\x1b[2Jb\x07c\r\nsplitbuild: ok\u2028\u202e\u2066\x85\x00"
    assert scrub(text) == "a\\x1b[2Jb\\x07c\\r\\nsplitbuild: ok\\u2028\\u202e\\u2066\\x85\\x00"
    assert scrub("plain ünïcode text") == "plain ünïcode text"


def test_errors_scrub_their_message_hint_and_details_whenever_set() -> None:
    register_secret("hunter2-secret")
    error = RegistryError("x hunter2-secret\n", hint="y \x1b[31mhunter2-secret")
    assert str(error) == f"x {MASK}\\n"
    assert error.args == (f"x {MASK}\\n",)
    assert error.hint == f"y \\x1b[31m{MASK}"
    error.message = "again hunter2-secret"
    assert str(error) == f"again {MASK}"
    assert ErrorDetail("DENIED", "echo hunter2-secret").message == f"echo {MASK}"


def test_the_request_deadline_setting() -> None:
    assert RegistryClient(env={}).deadline == DEADLINE == 120.0
    assert RegistryClient(env={"SPLITBUILD_REQUEST_DEADLINE": "5"}).deadline == 5.0
    assert RegistryClient(env={}).deadline_for(256 * 1024 * 10) == DEADLINE + 10
    for bad in ("soon", "0", "-1", "nan"):
        with pytest.raises(ConfigError, match="SPLITBUILD_REQUEST_DEADLINE"):
            RegistryClient(env={"SPLITBUILD_REQUEST_DEADLINE": bad})


def test_human_tables_of_registry_data_are_scrubbed_too(capsys: pytest.CaptureFixture[str]) -> None:
    """inspect prints annotations and labels a registry chose: the same scrubber as for errors."""
    from splitbuild.cli.maintain_output import table

    register_secret("annotation-secret-value-1234")
    table("annotations", ["KEY", "VALUE"], [["note", "x annotation-secret-value-1234 \x1b]0;pwned\x07 y"]])
    out = capsys.readouterr().out
    assert "annotation-secret-value-1234" not in out
    assert MASK in out
    assert "\x1b" not in out
    assert "\x07" not in out
