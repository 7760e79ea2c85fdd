"""SIGTERM, SIGHUP and SIGINT stop a real ``splitbuild`` process the same way: its cleanup runs.

``delete --tag-only`` on distribution 2.x removes a tag by pointing it at a placeholder manifest
and deleting that by digest. A proxy holds the process at the dangerous moment (the tag on the
placeholder, the DELETE or the placeholder PUT's answer held); the signal comes then, and the
tag must point at its image again when the process ends (exit 130).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from splitbuild.client import Client
from splitbuild.reference import Reference
from splitbuild.retry import NO_RETRY
from splitbuild.store.registry import PLACEHOLDER_ANNOTATION
from tests.faults import GateProxy
from tests.images import make_image, push
from tests.registry_server import RegistryServer

ROOT = Path(__file__).resolve().parent.parent


def seed(registry: RegistryServer, repo: str) -> str:
    async def run() -> str:
        async with Client(retry=NO_RETRY, env={}) as client:
            image = make_image("linux/amd64", seed=repo)
            await push(client.repository(Reference.parse(f"{registry.host}/{repo}")), image, "v1")
            return image.digest

    return anyio.run(run)


def tag_now(registry: RegistryServer, repo: str, tag: str) -> str | None:
    """The digest the tag points at, ``placeholder`` for a placeholder manifest."""

    async def run() -> str | None:
        async with Client(retry=NO_RETRY, env={}) as client:
            repository = client.repository(Reference.parse(f"{registry.host}/{repo}"))
            if await repository.head_manifest(tag) is None:
                return None
            manifest = await repository.get_manifest(tag)
            annotations = manifest.doc.get("annotations") or {}
            return "placeholder" if PLACEHOLDER_ANNOTATION in annotations else manifest.digest

    return anyio.run(run)


def once(test: Callable[[str, str], bool]) -> Callable[[str, str], bool]:
    """``test``, true for the first matching request only."""
    seen: list[str] = []

    def hold(method: str, target: str) -> bool:
        if seen or not test(method, target):
            return False
        seen.append(target)
        return True

    return hold


def delete_placeholder(method: str, target: str) -> bool:
    return method == "DELETE" and "/manifests/sha256:" in target


def placeholder_put(method: str, target: str) -> bool:
    return method == "PUT" and target.endswith("/manifests/v1")


def interrupt_tag_only_delete(
    registry: RegistryServer,
    tmp_path: Path,
    signum: int,
    hold: Callable[[str, str], bool],
    *,
    answered: bool = False,
) -> tuple[subprocess.CompletedProcess[str], str, str | None, str | None]:
    """Run ``delete --tag-only`` through a proxy holding ``hold``; signal it while held.

    Returns the process, the image digest, the tag while held and the tag at the end."""
    repo = f"signals/{uuid.uuid4().hex[:8]}"
    digest = seed(registry, repo)
    proxy = GateProxy(registry.port, "delete", hold=once(hold), answered=answered).start()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "DOCKER_CONFIG": str(tmp_path),
        "PYTHONPATH": str(ROOT),
    }
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "splitbuild", "delete", "--tag-only", f"{proxy.host}/{repo}:v1"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while not proxy.held():
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, "the process never reached the held request"
                time.sleep(0.02)
            during = tag_now(registry, repo, "v1")
            process.send_signal(signum)
            stdout, stderr = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    finally:
        proxy.stop()
    done = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    return done, digest, during, tag_now(registry, repo, "v1")


SIGNALS = [signal.SIGTERM, signal.SIGHUP, signal.SIGINT]


@pytest.mark.parametrize("signum", SIGNALS, ids=[s.name for s in SIGNALS])
def test_a_signal_during_the_placeholder_delete_puts_the_tag_back(
    registry: RegistryServer, tmp_path: Path, signum: signal.Signals
) -> None:
    done, digest, during, after = interrupt_tag_only_delete(registry, tmp_path, signum, delete_placeholder)
    assert during == "placeholder"  # the dangerous moment
    assert done.returncode == 130, done.stderr
    assert f"splitbuild: error: interrupted by {signum.name}" in done.stderr
    assert "Traceback" not in done.stderr
    assert after == digest


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_while_the_placeholder_put_is_answered_puts_the_tag_back(
    registry: RegistryServer, tmp_path: Path, signum: signal.Signals
) -> None:
    """The registry applied the placeholder PUT; its answer is held: the tag is on the placeholder
    although the process has not heard so."""
    done, digest, during, after = interrupt_tag_only_delete(
        registry, tmp_path, signum, placeholder_put, answered=True
    )
    assert during == "placeholder"
    assert done.returncode == 130, done.stderr
    assert after == digest


def test_a_signal_during_the_merge_tag_writes_lets_them_finish(
    registry: RegistryServer, tmp_path: Path
) -> None:
    """SIGTERM while the second of three tag PUTs waits: the tags are finished, none is left on
    the old index (split), and the merge ends as it would have."""
    repo = f"signals/{uuid.uuid4().hex[:8]}"

    async def images() -> list[str]:
        async with Client(retry=NO_RETRY, env={}) as client:
            target = client.repository(Reference.parse(f"{registry.host}/{repo}"))
            built = [make_image(p, seed=repo) for p in ("linux/amd64", "linux/arm64")]
            for image in built:
                await push(target, image)
            return [image.digest for image in built]

    digests = anyio.run(images)
    proxy = GateProxy(
        registry.port, "merge", hold=once(lambda m, t: m == "PUT" and t.endswith("/manifests/b"))
    ).start()
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    tags = [arg for tag in "abc" for arg in ("-t", f"{proxy.host}/{repo}:{tag}")]
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "splitbuild", "merge", *tags, *digests],
            env={**env, "DOCKER_CONFIG": str(tmp_path)},
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while not proxy.held():
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, "the merge never reached its second tag"
                time.sleep(0.02)
            process.send_signal(signal.SIGTERM)
            time.sleep(0.5)  # the signal is handled while the PUT waits
            assert process.poll() is None, process.communicate()
            proxy.release(proxy.held()[0])
            stdout, stderr = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    finally:
        proxy.stop()
    assert process.returncode == 0, stderr
    final = {tag: tag_now(registry, repo, tag) for tag in "abc"}
    assert len(set(final.values())) == 1, final
    assert all(f"pushed    {proxy.host}/{repo}:{tag}" in stdout for tag in "abc"), stdout


def test_sighup_during_a_copy_stops_it_before_the_tag(registry: RegistryServer, tmp_path: Path) -> None:
    """A copy signalled while its tag PUT waits (blobs mounted): it stops there (exit 130), and
    the destination tag is never written."""
    repo = f"signals/{uuid.uuid4().hex[:8]}"
    seed(registry, repo)
    proxy = GateProxy(
        registry.port,
        "copy",
        hold=once(lambda m, t: m == "PUT" and t.endswith("/copied/manifests/v1")),
    ).start()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "DOCKER_CONFIG": str(tmp_path),
        "PYTHONPATH": str(ROOT),
    }
    source, destination = f"{proxy.host}/{repo}:v1", f"{proxy.host}/{repo}/copied:v1"
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "splitbuild", "copy", source, destination],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while not proxy.held():
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, "the copy never reached its tag PUT"
                time.sleep(0.02)
            process.send_signal(signal.SIGHUP)
            _, stderr = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    finally:
        proxy.stop()
    assert process.returncode == 130, stderr
    assert "splitbuild: error: interrupted by SIGHUP" in stderr
    assert tag_now(registry, f"{repo}/copied", "v1") is None
