"""splitbuild: split multi-platform container builds and the registry client behind them.

The package namespace is lazy: ``import splitbuild`` is cheap, and names are imported from their
modules on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from splitbuild._version import __version__

_EXPORTS: dict[str, str] = {
    "SplitbuildError": "splitbuild.errors",
    "InvalidReference": "splitbuild.errors",
    "InvalidDigest": "splitbuild.errors",
    "InvalidManifest": "splitbuild.errors",
    "NotFound": "splitbuild.errors",
    "RegistryError": "splitbuild.errors",
    "AuthError": "splitbuild.errors",
    "VerificationError": "splitbuild.errors",
    "Reference": "splitbuild.reference",
    "LayoutReference": "splitbuild.reference",
    "parse_reference": "splitbuild.reference",
    "Client": "splitbuild.client",
    "Registry": "splitbuild.registry",
    "RetentionPolicy": "splitbuild.ops",
    "MergeOptions": "splitbuild.merge",
}

if TYPE_CHECKING:
    from splitbuild.client import Client as Client
    from splitbuild.errors import AuthError as AuthError
    from splitbuild.errors import InvalidDigest as InvalidDigest
    from splitbuild.errors import InvalidManifest as InvalidManifest
    from splitbuild.errors import InvalidReference as InvalidReference
    from splitbuild.errors import NotFound as NotFound
    from splitbuild.errors import RegistryError as RegistryError
    from splitbuild.errors import SplitbuildError as SplitbuildError
    from splitbuild.errors import VerificationError as VerificationError
    from splitbuild.merge import MergeOptions as MergeOptions
    from splitbuild.ops import RetentionPolicy as RetentionPolicy
    from splitbuild.reference import LayoutReference as LayoutReference
    from splitbuild.reference import Reference as Reference
    from splitbuild.reference import parse_reference as parse_reference
    from splitbuild.registry import Registry as Registry

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'splitbuild' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
