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


@dataclass
class RegistryServer:
    """One registry process. ``host`` is ``127.0.0.1:PORT``; ``url`` its base URL."""

    root: Path
    port: int
    auth: dict[str, Any] | None = None
    extra_config: dict[str, Any] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    scheme: str = "http"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

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
        verify: Any = self.extra_config.get("_verify", False)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"registry exited with {self.proc.returncode}: "
                    + (self.root / "registry.log").read_text(errors="replace")[-2000:]
                )
            try:
                r = httpx.get(f"{self.url}/v2/", timeout=1.0, verify=verify)
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
) -> RegistryServer:
    """Start a registry with storage under ``root`` (a new temp dir by default).

    ``htpasswd=(user, password)`` turns on basic auth with one user.
    """
    root = Path(root or tempfile.mkdtemp(prefix="splitbuild-registry-"))
    root.mkdir(parents=True, exist_ok=True)
    auth = None
    if htpasswd is not None:
        path = root / "htpasswd"
        path.write_text(htpasswd_line(*htpasswd))
        os.chmod(path, 0o600)
        auth = {"htpasswd": {"realm": "splitbuild-test", "path": str(path)}}
    server = RegistryServer(root=root, port=free_port(), auth=auth, extra_config=extra_config or {})
    server.start()
    return server
