"""A small token service (distribution's token auth spec) for tests, and the registry config trusting it.

It signs JWTs with a throwaway P-256 key (ES256) whose self-signed certificate is both the ``x5c``
header of every token and the registry's ``rootcertbundle``: distribution 2.8 verifies the chain
in ``x5c`` against that bundle, then the signature, issuer, audience (= service), ``exp``/``nbf``,
and finally that the token's ``access`` claim covers what the request needs. So scopes are
really enforced: a pull-only token cannot push.

Policy: ``users`` (name -> password), ``refresh_tokens`` (token -> user), and ``grants``
(account, or None for anonymous -> fnmatch pattern on the repository name -> allowed actions).
A token grants the intersection of what was asked and what the policy allows. Every request is
recorded in ``requests``; ``fail_next`` makes the next requests fail with the given statuses.
"""

from __future__ import annotations

import base64
import datetime as dt
import fnmatch
import json
import secrets
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from tests.registry_server import free_port

ISSUER = "splitbuild-test-issuer"
SERVICE = "splitbuild-test-registry"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class TokenRequestLog:
    method: str
    account: str | None
    scopes: tuple[str, ...]
    params: dict[str, list[str]]
    authorization: str | None


class _Server(ThreadingHTTPServer):
    """A client that goes away mid-response (a command failing fast closes its connections) is
    not an error of the token service: no traceback on stderr, which a CLI test captures."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


@dataclass
class TokenServer:
    root: Path
    users: dict[str, str] = field(default_factory=dict)
    refresh_tokens: dict[str, str] = field(default_factory=dict)
    grants: dict[str | None, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    expires_in: int = 300
    jwt_lifetime: int | None = None
    rotate_refresh_tokens: bool = False
    issuer: str = ISSUER
    service: str = SERVICE
    requests: list[TokenRequestLog] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)
    strict: bool = False
    """Refuse (403) a token asking for actions the account may not have, instead of granting the
    ones it may: what some token services did (notaryproject/notary#594)."""

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "splitbuild test token signer")])
        now = dt.datetime.now(dt.UTC)
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.cert_path = self.root / "token-signer.pem"
        self.cert_path.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.port = free_port()

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def registry_config(self) -> dict[str, Any]:
        """``extra_config`` for :func:`tests.registry_server.start_registry`."""
        return {
            "auth": {
                "token": {
                    "realm": self.realm,
                    "service": self.service,
                    "issuer": self.issuer,
                    "rootcertbundle": str(self.cert_path),
                }
            }
        }

    def start(self) -> TokenServer:
        server = _Server(("127.0.0.1", self.port), _handler(self))
        self._server = server
        threading.Thread(target=server.serve_forever, name="token-server", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.fail_next.clear()

    # -- policy ------------------------------------------------------------------------------
    def allowed(self, account: str | None, kind: str, name: str, actions: list[str]) -> list[str]:
        if kind != "repository":
            return []
        permitted: set[str] = set()
        for pattern, granted in self.grants.get(account, {}).items():
            if fnmatch.fnmatchcase(name, pattern):
                permitted |= set(granted)
        return [a for a in actions if a in permitted or "*" in permitted]

    def issue(self, account: str | None, scopes: list[str]) -> str:
        access: dict[tuple[str, str], list[str]] = {}
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            if not name:
                continue
            key = (kind, name)
            for action in self.allowed(account, kind, name, actions.split(",")):
                if action not in access.setdefault(key, []):
                    access[key].append(action)
        now = int(dt.datetime.now(dt.UTC).timestamp())
        lifetime = self.expires_in if self.jwt_lifetime is None else self.jwt_lifetime
        header = {
            "typ": "JWT",
            "alg": "ES256",
            "x5c": [base64.b64encode(self._cert.public_bytes(serialization.Encoding.DER)).decode()],
        }
        claims = {
            "iss": self.issuer,
            "sub": account or "",
            "aud": self.service,
            "exp": now + lifetime,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": [{"type": k, "name": n, "actions": a} for (k, n), a in access.items() if a],
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        der = self._key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def log(self, entry: TokenRequestLog) -> int | None:
        with self._lock:
            self.requests.append(entry)
            return self.fail_next.pop(0) if self.fail_next else None


def _handler(server: TokenServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def _reply(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _denied(self) -> None:
            self._reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]})

        def _basic_account(self) -> tuple[bool, str | None]:
            header = self.headers.get("Authorization")
            if not header:
                return True, None
            scheme, _, value = header.partition(" ")
            if scheme.lower() != "basic":
                return False, None
            user, _, password = base64.b64decode(value).decode().partition(":")
            return server.users.get(user) == password and user in server.users, user

        def _grant(self, account: str | None, scopes: list[str], refresh: str | None) -> None:
            if server.strict and any(_overreaches(server, account, scope) for scope in scopes):
                self._reply(403, {"errors": [{"code": "DENIED", "message": "requested access not allowed"}]})
                return
            token = server.issue(account, scopes)
            body: dict[str, Any] = {
                "token": token,
                "access_token": token,
                "expires_in": server.expires_in,
                "issued_at": dt.datetime.now(dt.UTC).isoformat(),
            }
            if refresh:
                body["refresh_token"] = refresh
            self._reply(200, body)

        def _fail(self, entry: TokenRequestLog) -> bool:
            status = server.log(entry)
            if status is None:
                return False
            self._reply(
                status, {"errors": [{"code": "UNAVAILABLE", "message": "injected"}]}, {"Retry-After": "1"}
            )
            return True

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            params = parse_qs(url.query, keep_blank_values=True)
            scopes = [s for value in params.get("scope", []) for s in value.split()]
            ok, account = self._basic_account()
            entry = TokenRequestLog("GET", account, tuple(scopes), params, self.headers.get("Authorization"))
            if self._fail(entry):
                return
            if url.path != "/token" or params.get("service", [""])[0] != server.service:
                self._reply(404, {"errors": [{"code": "NOT_FOUND", "message": url.path}]})
                return
            if not ok:
                self._denied()
                return
            self._grant(account, scopes, None)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode(), keep_blank_values=True)
            scopes = [s for value in form.get("scope", []) for s in value.split()]
            grant = form.get("grant_type", [""])[0]
            account: str | None = None
            refresh: str | None = None
            if grant == "refresh_token":
                given = form.get("refresh_token", [""])[0]
                account = server.refresh_tokens.get(given)
                refresh = given
                if account is not None and server.rotate_refresh_tokens:
                    refresh = secrets.token_hex(16)
                    server.refresh_tokens[refresh] = account
            elif grant == "password":
                user, password = form.get("username", [""])[0], form.get("password", [""])[0]
                account = user if server.users.get(user) == password and user in server.users else None
            entry = TokenRequestLog("POST", account, tuple(scopes), form, self.headers.get("Authorization"))
            if self._fail(entry):
                return
            if account is None:
                self._denied()
                return
            self._grant(account, scopes, refresh)

    return Handler


def _overreaches(server: TokenServer, account: str | None, scope: str) -> bool:
    kind, _, rest = scope.partition(":")
    name, _, actions = rest.rpartition(":")
    wanted = actions.split(",")
    return len(server.allowed(account, kind, name, wanted)) < len(wanted)


def start_token_server(root: Path, **kwargs: Any) -> TokenServer:
    return TokenServer(root=root, **kwargs).start()
