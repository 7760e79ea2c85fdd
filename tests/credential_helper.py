"""A fake docker credential helper (``docker-credential-<name>``) for the credential tests: it answers
``get`` from a table and logs every call."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

HELPER = """#!{python}
import json, sys
from pathlib import Path
here = Path({state!r})
table = json.loads((here / "helper-table.json").read_text())
data = sys.stdin.read()
log = here / "helper-calls.json"
calls = json.loads(log.read_text()) if log.exists() else []
calls.append({{"argv": sys.argv[1:], "stdin": data}})
log.write_text(json.dumps(calls))
answer = table.get(data, {{"stdout": "credentials not found in native keychain", "exit": 1}})
if "sleep" in answer:
    import time
    time.sleep(answer["sleep"])
sys.stdout.write(answer["stdout"])
sys.exit(answer["exit"])
"""


def write_helper(tmp_path: Path, table: dict[str, dict[str, Any]], name: str = "test") -> dict[str, str]:
    """A fake ``docker-credential-<name>`` answering ``get`` from ``table`` (stdin -> answer);
    calls are logged to ``helper-calls.json``. Returns an environment with it on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (tmp_path / "helper-table.json").write_text(json.dumps(table))
    script = bin_dir / f"docker-credential-{name}"
    script.write_text(HELPER.format(python=sys.executable, state=str(tmp_path)))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "HOME": str(tmp_path / "home")}


def helper_calls(tmp_path: Path) -> list[dict[str, Any]]:
    """The calls of the helper ``write_helper(tmp_path, ...)`` wrote, oldest first: argv and stdin."""
    log = tmp_path / "helper-calls.json"
    return json.loads(log.read_text()) if log.exists() else []
