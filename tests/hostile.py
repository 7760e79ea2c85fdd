"""Running the real ``splitbuild`` process on hostile inputs: exit code, output, peak memory, deadline.

Each run is a child process with an address-space cap (so an attack that would read without bound
fails fast instead of taking the machine) and a deadline (so one that hangs is killed); its peak
RSS is its own ``VmHWM`` (``tests/rss_probe.py`` says why not ``wait4``). Also builders of crafted
layouts written straight to disk.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from splitbuild.models import OCI_CONFIG, OCI_INDEX, OCI_MANIFEST

ROOT = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024
ADDRESS_SPACE = 1024 * MiB
"""The child's address-space cap: far above what any command should need."""
MAX_RSS = 200 * MiB
"""No command may use more on the hostile cases (the acceptance bound of issue 14)."""


@dataclass(frozen=True)
class Run:
    exit_code: int
    stdout: str
    stderr: str
    max_rss: int
    """Peak resident set size in bytes."""
    seconds: float
    timed_out: bool


def run_cli(*args: str, deadline: float = 60.0, env: dict[str, str] | None = None) -> Run:
    """``python -m splitbuild ARGS`` with the caps above; killed after ``deadline`` seconds."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))

    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1", "COLUMNS": "200"}
    full_env["MALLOC_ARENA_MAX"] = "2"
    full_env.update(env or {})
    start = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, peak_rss_file() as peak:
        full_env["RSS_PROBE_FILE"] = str(peak)
        proc = subprocess.Popen(
            probe_command("splitbuild", *args),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=full_env,
            cwd=ROOT,
            preexec_fn=limit,
        )
        timed_out = False
        while True:
            pid, status, _ = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - start > deadline:
                timed_out = True
                proc.kill()
                _, status, _ = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(
            exit_code=proc.returncode,
            stdout=out.read().decode(errors="replace"),
            stderr=err.read().decode(errors="replace"),
            max_rss=read_peak_kib(peak) * 1024,
            seconds=time.monotonic() - start,
            timed_out=timed_out,
        )


def probe_command(module: str, *args: str) -> list[str]:
    """``python -m MODULE ARGS`` under ``tests/rss_probe.py``, which records the peak RSS."""
    return [sys.executable, str(ROOT / "tests" / "rss_probe.py"), module, *args]


@contextlib.contextmanager
def peak_rss_file() -> Iterator[Path]:
    """A file for ``RSS_PROBE_FILE``, removed afterwards."""
    with tempfile.TemporaryDirectory() as scratch:
        yield Path(scratch) / "peak-kib"


def read_peak_kib(path: Path) -> int:
    """The probe's figure; 0 when the child was killed before it could write one."""
    try:
        return int(path.read_text())
    except FileNotFoundError:
        return 0


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class RawLayout:
    """An OCI layout written file by file (no splitbuild code), so it can be anything."""

    def __init__(self, path: Path) -> None:
        self.path = path
        (path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
        self.entries: list[dict[str, object]] = []
        self.write_index()

    def blob_path(self, digest: str) -> Path:
        return self.path / "blobs" / "sha256" / digest.split(":", 1)[1]

    def blob(self, data: bytes, media_type: str = "application/octet-stream") -> dict[str, object]:
        digest = digest_of(data)
        path = self.blob_path(digest)
        if not path.exists():
            path.write_bytes(data)
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    def image(self, seed: object = 0) -> dict[str, object]:
        """A small image manifest (an empty-ish config, no layers) and its descriptor."""
        config = self.blob(json.dumps({"architecture": "amd64", "os": "linux"}).encode(), OCI_CONFIG)
        doc = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config,
            "layers": [],
            "annotations": {"seed": str(seed)},
        }
        desc = self.blob(json.dumps(doc).encode(), OCI_MANIFEST)
        return {**desc, "platform": {"os": "linux", "architecture": "amd64"}}

    def index(self, children: list[dict[str, object]], seed: object = 0) -> dict[str, object]:
        doc = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": children,
            "annotations": {"seed": str(seed)},
        }
        return self.blob(json.dumps(doc).encode(), OCI_INDEX)

    def tag(self, tag: str, desc: dict[str, object]) -> None:
        entry = {k: v for k, v in desc.items() if k != "platform"}
        self.entries.append({**entry, "annotations": {"org.opencontainers.image.ref.name": tag}})
        self.write_index()

    def write_index(self) -> None:
        doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": self.entries}
        (self.path / "index.json").write_text(json.dumps(doc))
