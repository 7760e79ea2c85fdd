"""The real list parser of docker's actions, called from node: ``Util.getList`` of
``@docker/actions-toolkit`` (the version docker/build-push-action's pinned release depends on),
installed by ``python3 tests/actions/prepare.py`` into ``tests/actions/.node``."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

ACTIONS = Path(__file__).resolve().parent / "actions"
NODE_MODULES = ACTIONS / ".node" / "node_modules"
TOOLKIT_VERSION = "0.92.0"  # docker/build-push-action v7.3.0's package.json
_SCRIPT = """
const {Util} = require(process.argv[1] + '/@docker/actions-toolkit/lib/util');
let input = '';
process.stdin.on('data', c => input += c);
process.stdin.on('end', () => {
  const {text, opts} = JSON.parse(input);
  process.stdout.write(JSON.stringify(Util.getList(text, opts)));
});
"""


def require_toolkit() -> None:
    """Fail (not skip) with the command that installs the parser when it is missing."""
    package = NODE_MODULES / "@docker" / "actions-toolkit" / "package.json"
    assert shutil.which("node"), "node is not installed (Debian package nodejs)"
    assert package.is_file(), "the actions toolkit is missing: run python3 tests/actions/prepare.py"
    version = json.loads(package.read_text())["version"]
    assert version == TOOLKIT_VERSION, f"actions toolkit {version}, want {TOOLKIT_VERSION}: rerun prepare.py"


def node_get_list(text: str, *, ignore_comma: bool = True, quote: bool | None = None) -> list[str]:
    """``Util.getList(text, {ignoreComma, quote})`` as build-push-action calls it for build-args,
    labels (ignoreComma) and outputs (also ``quote: false``)."""
    require_toolkit()
    opts: dict[str, bool] = {"ignoreComma": ignore_comma}
    if quote is not None:
        opts["quote"] = quote
    result = subprocess.run(
        ["node", "-e", _SCRIPT, str(NODE_MODULES)],
        input=json.dumps({"text": text, "opts": opts}),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    items = json.loads(result.stdout)
    assert isinstance(items, list)
    return [str(item) for item in items]
