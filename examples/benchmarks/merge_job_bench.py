#!/usr/bin/env python3
"""Benchmark the generated merge job end to end: its install step, then the merge.

The install step is the GitHub/Forgejo workflow's own script (``splitbuild.workflow.github``),
run as the runner runs it: bash, a fresh ``$RUNNER_TEMP``, the hash-locked closure from
``install-lock.json`` and splitbuild itself (a wheel built from the checkout) as ``[ci] install``.
Packages come from a local wheelhouse (``PIP_NO_INDEX``/``PIP_FIND_LINKS``, as the runner tests
install), so the figure is the install itself, without downloads. Then the venv's ``splitbuild
merge`` publishes 8 platforms under 5 tags on a real registry (Debian's docker-registry) behind a
loopback proxy adding 25 ms each way: the first run of the freshly installed package, as in CI.

With ``--baseline PATH`` the install script, lock and merge of another checkout run beside this
one's, in turn within each run. Prints the medians of install, merge and total (wall), and the
installed closure (distributions, files, MiB).

Usage: python3 examples/benchmarks/merge_job_bench.py [--runs 3] [--baseline PATH]
       [--wheelhouse DIR] [--json]

The wheelhouse (default ``tests/actions/.cache/wheels``, which ``tests/actions/prepare.py`` fills for
the runner tests) must hold the locked files for this machine; when some are missing the script
fills it with ``pip download`` from the configured package index (the one step that needs it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import anyio  # noqa: E402
from _bench import median, with_pythonpath  # noqa: E402
from merge_bench import TAGS, seed  # noqa: E402

from tests.proxy import LatencyProxy  # noqa: E402
from tests.registry_server import start_registry  # noqa: E402

_READ_SCRIPT = (
    "import json; from splitbuild.workflow.github import _INSTALL_SCRIPT as s; "
    "from splitbuild.workflow.install_lock import requirements_text as r; "
    "print(json.dumps([s, r()]))"
)


def job_parts(checkout: Path, work: Path) -> tuple[str, str]:
    """The install script and the lock's requirements text of ``checkout``'s generator."""
    out = subprocess.run(
        [sys.executable, "-c", _READ_SCRIPT],
        env=with_pythonpath(dict(os.environ), str(checkout)),
        cwd=work,
        capture_output=True,
        text=True,
        check=True,
    )
    script, lock = json.loads(out.stdout)
    return script, lock


def build_wheel(checkout: Path, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(into),
            str(checkout),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = into.glob("splitbuild-*.whl")
    return wheel


def fill_wheelhouse(wheelhouse: Path, locks: list[str], work: Path) -> None:
    wheelhouse.mkdir(parents=True, exist_ok=True)
    for index, lock in enumerate(locks):
        requirements = work / f"lock{index}.txt"
        requirements.write_text(lock)
        probe = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--only-binary=:all:",
                "--no-index",
                "--find-links",
                str(wheelhouse),
                "-d",
                str(work / "probe"),
                "-r",
                str(requirements),
            ],
            capture_output=True,
        )
        if probe.returncode == 0:
            continue
        print(f"filling {wheelhouse} from the package index (pip download)", file=sys.stderr)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--only-binary=:all:",
                "-d",
                str(wheelhouse),
                "-r",
                str(requirements),
            ],
            check=True,
        )


def closure_size(venv: Path) -> dict[str, float]:
    site = next(venv.glob("lib/python*/site-packages"))
    files = [p for p in site.rglob("*") if p.is_file()]
    return {
        "distributions": len(list(site.glob("*.dist-info"))),
        "files": len(files),
        "mib": sum(p.stat().st_size for p in files) / 2**20,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--baseline", type=Path, help="another splitbuild checkout to run beside this one")
    ap.add_argument("--wheelhouse", type=Path, default=ROOT / "tests" / "actions" / ".cache" / "wheels")
    ap.add_argument("--delay", type=float, default=0.025, help="added latency each way for the merge")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="splitbuild-jobbench-"))
    bindir = work / "bin"
    bindir.mkdir()
    (work / "home").mkdir()
    (bindir / "python").symlink_to(sys.executable)  # the runner's `python` (setup-python's)
    checkouts = {"splitbuild": ROOT}
    if args.baseline is not None:
        checkouts["splitbuild baseline"] = args.baseline.resolve()
    jobs = {}
    for index, (name, checkout) in enumerate(checkouts.items()):
        script, lock = job_parts(checkout, work)
        jobs[name] = (script, lock, build_wheel(checkout, work / f"wheel{index}"))
    fill_wheelhouse(args.wheelhouse, [lock for _, lock, _ in jobs.values()], work)

    registry = start_registry(work / "registry")
    proxy = LatencyProxy(registry.port, delay=args.delay).start()
    figures: dict[str, dict[str, list[float]]] = {n: {"install": [], "merge": []} for n in jobs}
    sizes: dict[str, dict[str, float]] = {}
    try:
        for run in range(args.runs):
            for name, (script, lock, wheel) in jobs.items():
                temp = work / f"runner-{run}-{name.replace(' ', '-')}"
                temp.mkdir()
                env = {
                    "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
                    "HOME": str(work / "home"),
                    "RUNNER_TEMP": str(temp),
                    "GITHUB_PATH": str(temp / "github_path"),
                    "SPLITBUILD_LOCK": lock,
                    "SPLITBUILD_INSTALL": str(wheel),
                    "PIP_NO_INDEX": "1",
                    "PIP_FIND_LINKS": str(args.wheelhouse),
                    "PIP_NO_CACHE_DIR": "1",
                }
                start = time.perf_counter()
                proc = subprocess.run(
                    ["bash", "-e", "-c", script], env=env, cwd=temp, capture_output=True, text=True
                )
                install = time.perf_counter() - start
                if proc.returncode != 0:
                    raise SystemExit(f"{name}: install step failed: {proc.stderr.strip()[-800:]}")
                venv_bin = Path((temp / "github_path").read_text().strip())
                repo = f"job/{name.replace(' ', '-')}-{run}"
                digests = anyio.run(seed, registry.host, repo)
                cmd = [str(venv_bin / "splitbuild"), "merge", "--json"]
                for tag in TAGS:
                    cmd += ["-t", f"{proxy.host}/{repo}:{tag}"]
                start = time.perf_counter()
                proc = subprocess.run(cmd + digests, env=env, cwd=temp, capture_output=True, text=True)
                merge = time.perf_counter() - start
                if proc.returncode != 0:
                    raise SystemExit(f"{name}: merge failed: {proc.stderr.strip()[-800:]}")
                figures[name]["install"].append(install)
                figures[name]["merge"].append(merge)
                sizes[name] = closure_size(venv_bin.parent)
    finally:
        proxy.stop()
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)

    results = {
        name: {
            "install": median(f["install"]),
            "merge": median(f["merge"]),
            "total": median([i + m for i, m in zip(f["install"], f["merge"], strict=True)]),
            **sizes[name],
        }
        for name, f in figures.items()
    }
    if args.json:
        print(json.dumps({"runs": args.runs, "results": results}))
        return
    base = results["splitbuild"]
    print(
        f"merge job: install step + first merge (8 platforms x 5 tags, "
        f"{args.delay * 2000:.0f} ms RTT), median of {args.runs}"
    )
    print(
        f"{'job':<21}{'install s':>10}{'merge s':>9}{'total s':>9}{'x total':>9}"
        f"{'dists':>7}{'files':>7}{'MiB':>6}"
    )
    for name, r in results.items():
        print(
            f"{name:<21}{r['install']:>10.2f}{r['merge']:>9.2f}{r['total']:>9.2f}"
            f"{r['total'] / base['total']:>9.1f}"
            f"{r['distributions']:>7.0f}{r['files']:>7.0f}{r['mib']:>6.0f}"
        )


if __name__ == "__main__":
    main()
