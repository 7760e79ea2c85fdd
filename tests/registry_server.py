"""Start and stop a real CNCF distribution registry (Debian's ``docker-registry``) on loopback.

Used by the pytest fixtures in ``conftest.py`` and by the benchmark and demo scripts.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

BINARY = "docker-registry"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def htpasswd_line(user: str, password: str) -> str:
    import bcrypt

    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    return f"{user}:{hashed}\n"


@dataclass(frozen=True)
class TLSIdentity:
    """The registry's TLS certificate: issued for ``name`` by a throwaway CA (``trustme``)."""

    name: str
    ca_path: Path
    """PEM of the CA: what ``--ca-file`` / ``Client(ca_file=...)`` take."""
    cert_path: Path
    key_path: Path

    @classmethod
    def issue(cls, directory: Path, name: str) -> TLSIdentity:
        import trustme

        ca = trustme.CA(organization_name="splitbuild test CA")
        cert = ca.issue_cert(name)
        identity = cls(
            name=name,
            ca_path=directory / "ca.pem",
            cert_path=directory / "registry-cert.pem",
            key_path=directory / "registry-key.pem",
        )
        ca.cert_pem.write_to_path(str(identity.ca_path))
        cert.private_key_pem.write_to_path(str(identity.key_path))
        with identity.cert_path.open("wb") as chain:
            for pem in cert.cert_chain_pems:
                chain.write(pem.bytes())
        return identity


@dataclass
class RegistryServer:
    """One registry process. ``host`` is ``127.0.0.1:PORT``; ``url`` its base URL.

    With ``tls``, it serves HTTPS with a certificate for ``tls.name`` (not for the address):
    clients reach it as ``tls_host`` (``NAME:PORT``), a name that must resolve to 127.0.0.1.
    """

    root: Path
    port: int
    auth: dict[str, Any] | None = None
    extra_config: dict[str, Any] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    scheme: str = "http"
    tls: TLSIdentity | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    @property
    def tls_host(self) -> str:
        """``NAME:PORT`` for a TLS registry (the name its certificate is for)."""
        if self.tls is None:
            raise RuntimeError("this registry does not serve TLS")
        return f"{self.tls.name}:{self.port}"

    def config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "error", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.root / "data")},
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {"addr": self.host, "secret": "splitbuild-test-secret"},
        }
        if self.tls is not None:
            cfg["http"]["tls"] = {"certificate": str(self.tls.cert_path), "key": str(self.tls.key_path)}
        if self.auth:
            cfg["auth"] = self.auth
        for key, value in self.extra_config.items():
            if isinstance(value, dict) and isinstance(cfg.get(key), dict):
                cfg[key] = {**cfg[key], **value}
            else:
                cfg[key] = value
        return cfg

    def start(self, timeout: float = 20.0) -> None:
        if shutil.which(BINARY) is None:
            raise RuntimeError(f"{BINARY} is not installed (apt-get install docker-registry)")
        config_path = self.root / "config.yml"
        config_path.write_text(yaml.safe_dump(self.config()))
        self.log = open(self.root / "registry.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [BINARY, "serve", str(config_path)], stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"registry exited with {self.proc.returncode}: "
                    + (self.root / "registry.log").read_text(errors="replace")[-2000:]
                )
            try:
                # readiness only: the certificate is for tls.name, not for the address
                r = httpx.get(f"{self.url}/v2/", timeout=1.0, verify=False)
                if r.status_code in (200, 401):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("registry did not come up in time")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
            self.log.close()


def start_registry(
    root: Path | None = None,
    *,
    htpasswd: tuple[str, str] | None = None,
    extra_config: dict[str, Any] | None = None,
    tls_name: str | None = None,
) -> RegistryServer:
    """Start a registry with storage under ``root`` (a new temp dir by default).

    ``htpasswd=(user, password)`` turns on basic auth with one user. ``tls_name`` serves HTTPS
    with a certificate for that name from a new throwaway CA (``server.tls.ca_path``).
    """
    root = Path(root or tempfile.mkdtemp(prefix="splitbuild-registry-"))
    root.mkdir(parents=True, exist_ok=True)
    auth = None
    if htpasswd is not None:
        path = root / "htpasswd"
        path.write_text(htpasswd_line(*htpasswd))
        os.chmod(path, 0o600)
        auth = {"htpasswd": {"realm": "splitbuild-test", "path": str(path)}}
    tls = TLSIdentity.issue(root, tls_name) if tls_name is not None else None
    server = RegistryServer(
        root=root,
        port=free_port(),
        auth=auth,
        extra_config=extra_config or {},
        scheme="https" if tls is not None else "http",
        tls=tls,
    )
    server.start()
    return server
