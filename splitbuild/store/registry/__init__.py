"""Registry backend: the OCI distribution API over one shared ``httpx.AsyncClient``.

:class:`RegistryClient` owns the connection pool, the auth session, the retry policy, per-host
concurrency limits and a request counter; :meth:`RegistryClient.repository` hands out
:class:`RegistryRepository` handles implementing :class:`splitbuild.store.base.Repository`.

One module per concept, each above the ones it uses (``[tool.importlinter]`` contract
``registry-backend``):

- :mod:`.repository`: ``RegistryClient`` and ``RegistryRepository``, wiring the concepts below
- :mod:`.tag_deletion`: the tag-delete ladder and its placeholder manifest
- :mod:`.referrers`: the referrers API and the referrers tag index
- :mod:`.manifests`, :mod:`.tags`, :mod:`.blobs`: ``/manifests``, ``/tags/list``, ``/blobs``
- :mod:`.endpoint`: one repository's URLs, scopes and request helper
- :mod:`.transport`: the shared HTTP state, deadlines, redirects and error translation
- :mod:`.vendor_deletion`: where registries without API deletion delete instead

This package's names are the ones callers import; the modules are its implementation.
"""

# Importable from here as before the split (callers and tests use them).
from splitbuild.reference import is_loopback as is_loopback
from splitbuild.store.registry.repository import RegistryClient, RegistryRepository
from splitbuild.store.registry.tag_deletion import EMPTY_JSON as EMPTY_JSON
from splitbuild.store.registry.tag_deletion import PLACEHOLDER_ANNOTATION as PLACEHOLDER_ANNOTATION
from splitbuild.store.registry.tag_deletion import placeholder_manifest
from splitbuild.store.registry.transport import DEADLINE as DEADLINE
from splitbuild.store.registry.transport import INSECURE_ENV
from splitbuild.store.registry.transport import MAX_ENTRIES as MAX_ENTRIES
from splitbuild.store.registry.transport import MAX_PAGES as MAX_PAGES
from splitbuild.store.registry.vendor_deletion import deletion_help

__all__ = [
    "INSECURE_ENV",
    "RegistryClient",
    "RegistryRepository",
    "deletion_help",
    "placeholder_manifest",
]
