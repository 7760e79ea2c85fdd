"""Constants the shared fixtures (tests/conftest.py) and the tests agree on. Test modules import
them from here: conftest.py is pytest's to load, not a module to import."""

from __future__ import annotations

from pathlib import Path

# Byte-identical copies of the project's shared reference material (see tests/conformance/README.md):
# tests read these, never anything outside the repository.
CONFORMANCE = Path(__file__).resolve().parent / "conformance"

# The one user of the ``auth_registry`` fixture's htpasswd file.
TEST_USER = "splitbuild-user"
TEST_PASSWORD = "s3cret-Passw0rd-not-for-output"
