"""splitbuild: split multi-platform container builds and the registry client behind them.

The package namespace is lazy: ``import splitbuild`` is cheap, and names are imported from their
modules on first use. It holds the public API: :class:`Registry` (every operation as a method),
:class:`Client`, references, the operations' result and policy types, the OCI models scripts
meet (:class:`Manifest`, :class:`Descriptor`, :class:`Platform`), the config loader and the CI
planner, and the errors (each with its exit code).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from splitbuild._version import __version__

_EXPORTS: dict[str, str] = {
    "SplitbuildError": "splitbuild.errors",
    "InvalidInput": "splitbuild.errors",
    "UsageError": "splitbuild.errors",
    "ConfigError": "splitbuild.errors",
    "DigestMismatch": "splitbuild.errors",
    "Refused": "splitbuild.errors",
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
    "parse_duration": "splitbuild.ops",
    "CopyResult": "splitbuild.ops",
    "DeleteResult": "splitbuild.ops",
    "InspectResult": "splitbuild.ops",
    "PruneResult": "splitbuild.ops",
    "TagList": "splitbuild.ops",
    "TagResult": "splitbuild.ops",
    "VerifyResult": "splitbuild.ops",
    "MergeOptions": "splitbuild.merge",
    "MergeResult": "splitbuild.merge",
    "Annotations": "splitbuild.index",
    "Platform": "splitbuild.models",
    "Manifest": "splitbuild.models",
    "Descriptor": "splitbuild.models",
    "load_config": "splitbuild.config",
    "plan": "splitbuild.planner",
}

if TYPE_CHECKING:
    from splitbuild.client import Client as Client
    from splitbuild.config import load_config as load_config
    from splitbuild.errors import AuthError as AuthError
    from splitbuild.errors import ConfigError as ConfigError
    from splitbuild.errors import DigestMismatch as DigestMismatch
    from splitbuild.errors import InvalidDigest as InvalidDigest
    from splitbuild.errors import InvalidInput as InvalidInput
    from splitbuild.errors import InvalidManifest as InvalidManifest
    from splitbuild.errors import InvalidReference as InvalidReference
    from splitbuild.errors import NotFound as NotFound
    from splitbuild.errors import Refused as Refused
    from splitbuild.errors import RegistryError as RegistryError
    from splitbuild.errors import SplitbuildError as SplitbuildError
    from splitbuild.errors import UsageError as UsageError
    from splitbuild.errors import VerificationError as VerificationError
    from splitbuild.index import Annotations as Annotations
    from splitbuild.merge import MergeOptions as MergeOptions
    from splitbuild.merge import MergeResult as MergeResult
    from splitbuild.models import Descriptor as Descriptor
    from splitbuild.models import Manifest as Manifest
    from splitbuild.models import Platform as Platform
    from splitbuild.ops import CopyResult as CopyResult
    from splitbuild.ops import DeleteResult as DeleteResult
    from splitbuild.ops import InspectResult as InspectResult
    from splitbuild.ops import PruneResult as PruneResult
    from splitbuild.ops import RetentionPolicy as RetentionPolicy
    from splitbuild.ops import TagList as TagList
    from splitbuild.ops import TagResult as TagResult
    from splitbuild.ops import VerifyResult as VerifyResult
    from splitbuild.ops import parse_duration as parse_duration
    from splitbuild.planner import plan as plan
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
