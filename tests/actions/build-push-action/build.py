"""The build-push stand-in's work: parse the inputs with the real parser, build with buildah, push
by digest, set the outputs ``imageid``, ``digest`` and ``metadata`` (see action.yml). With
``load: true`` (and one local tag, no outputs) the image goes to SPLITBUILD_TEST_IMAGES/<tag> as
an OCI layout instead, where the docker and trivy stand-ins find it by that name."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
# How build-push-action v7.3.0 (src/context.ts) reads each list input with Util.getInputList.
LISTS = {
    "build-args": {"ignoreComma": True},
    "build-contexts": {"ignoreComma": True},
    "labels": {"ignoreComma": True},
    "outputs": {"ignoreComma": True, "quote": False},
    "platforms": {},
    "secret-envs": {},
    "tags": {},
    "cache-from": {"ignoreComma": True},
    "cache-to": {"ignoreComma": True},
}


def parse_lists() -> dict[str, list[str]]:
    """Every list input through Util.getList, in one node call."""
    node_modules = os.environ["SPLITBUILD_TEST_NODE_MODULES"]
    request = {name: [os.environ.get(_var(name), "").strip(), opts] for name, opts in LISTS.items()}
    result = subprocess.run(
        ["node", str(HERE / "parse.js"), node_modules],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    parsed: dict[str, list[str]] = json.loads(result.stdout)
    return parsed


def _var(name: str) -> str:
    return "INPUT_" + name.upper().replace("-", "_")


def _output_options(item: str) -> dict[str, str]:
    """buildx reads each ``outputs`` entry as one CSV record of key=value fields."""
    (fields,) = list(csv.reader([item]))
    return dict(field.split("=", 1) for field in fields)


def run(argv: list[str], **env: str) -> None:
    print("+ " + " ".join(argv), flush=True)
    subprocess.run(argv, check=True, env={**os.environ, **env}, timeout=600)


def refuse_unsupported() -> None:
    """What buildah cannot do like buildx fails here instead of being silently skipped."""
    for name, allowed in (("PROVENANCE", ("", "false")), ("SBOM", ("", "false")), ("SECRET_ENVS", ("",))):
        if os.environ.get(f"INPUT_{name}", "").strip() not in allowed:
            raise SystemExit(f"::error::the build-push stand-in does not support {name.lower()}")


def main() -> None:
    refuse_unsupported()
    lists = parse_lists()
    load = os.environ.get("INPUT_LOAD") == "true"
    suffix = ".load" if load else ""
    record = Path(os.environ["SPLITBUILD_TEST_RECORD"]) / f"{os.environ['GITHUB_JOB']}{suffix}.json"
    record.write_text(json.dumps(lists))  # what the build got, for the test to compare
    (platform,) = lists["platforms"]
    if load:
        assert lists["outputs"] == [], lists["outputs"]
        (tag,) = lists["tags"]
        names, push = [], False
    else:
        (output,) = lists["outputs"]
        options = _output_options(output)
        assert options["type"] == "image", options
        assert options.get("push-by-digest") == "true", options
        names = options["name"].split(",")
        push = options.get("push") == "true"
    work = Path(os.environ["RUNNER_TEMP"]) / f"buildah-{os.environ['GITHUB_JOB']}"
    storage = ["--root", str(work / "root"), "--runroot", str(work / "run"), "--storage-driver", "vfs"]
    local = f"localhost/stand-in-{os.environ['GITHUB_JOB']}"
    argv = ["buildah", *storage, "build", "--isolation", "chroot", "--platform", platform, "-t", local]
    if os.environ.get("INPUT_FILE"):
        argv += ["-f", os.environ["INPUT_FILE"]]
    if os.environ.get("INPUT_TARGET"):
        argv += ["--target", os.environ["INPUT_TARGET"]]
    for item in lists["build-args"]:
        argv += ["--build-arg", item]
    for item in lists["labels"]:
        argv += ["--label", item]
    argv.append(os.environ.get("INPUT_CONTEXT") or ".")
    run(argv)
    if load:
        layout = Path(os.environ["SPLITBUILD_TEST_IMAGES"]) / tag.replace("/", "-").replace(":", "-")
        layout.parent.mkdir(parents=True, exist_ok=True)
    else:
        layout = Path(tempfile.mkdtemp(dir=work))
    run(["buildah", *storage, "push", "--format", "oci", local, f"oci:{layout}:img"])
    index = json.loads((layout / "index.json").read_text())
    (manifest,) = index["manifests"]
    digest = manifest["digest"]
    image_id = subprocess.run(
        ["buildah", *storage, "images", "--format", "{{.ID}}", "--no-trunc", local],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    if push:
        for name in names:
            run(
                [
                    "skopeo",
                    "copy",
                    "--preserve-digests",
                    "--dest-tls-verify=false",
                    "--dest-authfile",
                    os.environ["REGISTRY_AUTH_FILE"],
                    f"oci:{layout}:img",
                    f"docker://{name}@{digest}",
                ]
            )
    run(["buildah", *storage, "rmi", "--all", "--force"])
    metadata = {"containerimage.digest": digest, "image.name": ",".join(names)}
    with open(os.environ["GITHUB_OUTPUT"], "a", encoding="utf-8") as out:
        out.write(f"imageid={image_id}\ndigest={digest}\nmetadata={json.dumps(metadata)}\n")


if __name__ == "__main__":
    try:
        main()
    except subprocess.CalledProcessError as exc:
        print(f"::error::{exc}", flush=True)
        sys.exit(1)
