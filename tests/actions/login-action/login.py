"""Add ``USERNAME``/``PASSWORD`` (environment) for a registry to a docker config.json."""

import base64
import json
import os
import sys
from pathlib import Path

path, registry = Path(sys.argv[1]), sys.argv[2]
data = json.loads(path.read_text()) if path.exists() else {}
token = base64.b64encode(f"{os.environ['USERNAME']}:{os.environ['PASSWORD']}".encode()).decode()
data.setdefault("auths", {})[registry] = {"auth": token}
path.write_text(json.dumps(data))
path.chmod(0o600)
