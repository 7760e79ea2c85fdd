"""The public API: one namespace (``splitbuild``), documented, and a facade that drifts from
nothing underneath it."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from typing import Any

import pytest

import splitbuild
from splitbuild import ops
from splitbuild.client import Client, RegistrySettings
from splitbuild.errors import NotFound, UsageError
from splitbuild.merge import MergeOptions, merge
from splitbuild.retry import FAST_RETRY
from splitbuild.store.registry import RegistryClient
from tests.images import make_image, push
from tests.registry_server import RegistryServer

# Registry method -> the operation it wraps.
WRAPS: dict[str, Callable[..., Any]] = {
    "inspect": ops.inspect,
    "list_tags": ops.list_tags,
    "tag": ops.add_tags,
    "copy": ops.copy,
    "delete": ops.delete,
    "prune": ops.prune,
    "verify": ops.verify,
}


def _has_docstring(obj: Any) -> bool:
    doc = obj.__doc__  # not inspect.getdoc: that falls back to a base class's docstring
    if not doc or not doc.strip():
        return False
    generated = is_dataclass(obj) and isinstance(obj, type) and doc.startswith(f"{obj.__name__}(")
    return not generated


def _options(fn: Callable[..., Any], skip: int) -> list[inspect.Parameter]:
    return list(inspect.signature(fn).parameters.values())[skip:]


@pytest.mark.parametrize("method", sorted(WRAPS))
def test_the_facade_offers_every_option_of_the_operation(method: str) -> None:
    wrapped = _options(WRAPS[method], skip=1)  # the client
    offered = {p.name: p for p in _options(getattr(splitbuild.Registry, method), skip=1)}  # self
    for param in wrapped:
        assert param.name in offered, f"Registry.{method} lacks {param.name!r} of {WRAPS[method].__name__}"
        mine = offered[param.name]
        assert mine.kind == param.kind, f"Registry.{method}({param.name}) is {mine.kind}, not {param.kind}"
        assert mine.default == param.default, f"Registry.{method}({param.name}) default differs"
    assert set(offered) == {p.name for p in wrapped}


def test_the_facade_merge_offers_every_merge_option() -> None:
    offered = {p.name: p for p in _options(splitbuild.Registry.merge, skip=1)}
    assert offered["options"].default is None  # options or the keywords
    for param in _options(merge, skip=2):
        assert offered[param.name].default == param.default
    for option in fields(MergeOptions):
        assert option.name in offered, f"Registry.merge lacks the MergeOptions field {option.name!r}"
        assert offered[option.name].kind is inspect.Parameter.KEYWORD_ONLY


def test_the_constructor_takes_every_registry_client_option() -> None:
    """Explicit keywords, so a misspelt option fails the type check instead of the first request."""
    wanted = {p.name for p in _options(RegistryClient.__init__, skip=1)} | {"blob_cache"}  # Client's own
    offered = _options(splitbuild.Registry.__init__, skip=1)
    assert {p.name for p in offered} == wanted
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in offered)
    with pytest.raises(TypeError, match="unexpected keyword argument 'ca_flie'"):
        splitbuild.Registry(ca_flie="x")  # type: ignore[call-arg]


def test_the_client_settings_are_the_registry_client_options() -> None:
    """``Client(**settings)`` is typed by :class:`RegistrySettings`: the same names as RegistryClient's
    keywords, and a misspelt one is refused at construction, not at the first request."""
    wanted = {p.name for p in _options(RegistryClient.__init__, skip=1)}
    assert set(RegistrySettings.__annotations__) == wanted
    with pytest.raises(TypeError, match="unexpected keyword arguments: ca_flie"):
        Client(ca_flie="x")  # type: ignore[call-arg]
    assert Client(page_size=7).registry.page_size == 7


def test_every_public_name_is_documented() -> None:
    missing = {name for name in splitbuild.__all__ if name != "__version__"}
    missing = {name for name in missing if not _has_docstring(getattr(splitbuild, name))}
    assert missing == set()


def test_every_facade_method_is_documented() -> None:
    public = [name for name, _ in inspect.getmembers(splitbuild.Registry) if not name.startswith("_")]
    assert {"head", "digest", "get_manifest", *WRAPS, "merge"} <= set(public)
    missing = {name for name in public if not _has_docstring(getattr(splitbuild.Registry, name))}
    assert missing == set()


def test_the_result_and_policy_types_are_in_the_namespace() -> None:
    for name in [
        "CopyResult",
        "DeleteResult",
        "InspectResult",
        "PruneResult",
        "TagList",
        "TagResult",
        "VerifyResult",
        "RetentionPolicy",
    ]:
        assert getattr(splitbuild, name) is getattr(ops, name)
    assert splitbuild.MergeResult.__module__ == "splitbuild.merge"
    assert splitbuild.Platform.parse("linux/arm64/v8").key == "linux/arm64"
    assert set(splitbuild.__all__) == {
        "__version__",
        *(n for n in dir(splitbuild) if n in splitbuild.__all__),
    }
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = splitbuild.Nope  # type: ignore[attr-defined]


@pytest.mark.anyio
async def test_head_digest_get_manifest_and_merge_by_keywords(
    registry: RegistryServer, client: Client
) -> None:
    repo = f"{registry.host}/api/{uuid.uuid4().hex[:8]}"
    async with splitbuild.Registry(retry=FAST_RETRY, env={}) as reg:
        target = reg.repository(splitbuild.parse_reference(repo))
        amd64, arm64 = make_image("linux/amd64", seed="api"), make_image("linux/arm64", seed="api")
        await push(target, amd64, "amd64")
        await push(target, arm64)
        assert await reg.head(f"{repo}:missing") is None
        with pytest.raises(NotFound):
            await reg.digest(f"{repo}:missing")
        assert await reg.digest(f"{repo}:amd64") == amd64.digest
        head = await reg.head(f"{repo}@{arm64.digest}")
        assert head is not None
        assert (head.digest, head.size) == (arm64.digest, len(arm64.manifest.raw))
        manifest = await reg.get_manifest(f"{repo}:amd64")
        assert manifest.raw == amd64.manifest.raw
        merged = await reg.merge(
            targets=[f"{repo}:1.0"],
            sources=[f"{repo}:amd64", arm64.digest],
            platforms=["linux/amd64", "linux/arm64"],
            annotations=["org.opencontainers.image.vendor=Acme"],
        )
        assert await reg.digest(f"{repo}:1.0") == merged.plan.index.digest
        plain = await client.repository(splitbuild.parse_reference(repo)).get_manifest("1.0")
        assert plain.digest == merged.plan.index.digest
        index = await reg.get_manifest(f"{repo}:1.0")
        assert [c.digest for c in index.children()] == [amd64.digest, arm64.digest]
        assert index.parsed.annotations == {"org.opencontainers.image.vendor": "Acme"}
        seen: list[str] = []
        copied = await reg.copy(
            f"{repo}:1.0", f"{repo}:1.1", jobs=1, on_progress=lambda what, desc: seen.append(desc.digest)
        )
        assert copied.digest == merged.plan.index.digest
        with pytest.raises(UsageError, match="not both"):
            await reg.merge(MergeOptions(targets=[], sources=[]), targets=[f"{repo}:2"])
        with pytest.raises(UsageError, match="no target"):
            await reg.merge(sources=[arm64.digest])


def test_a_retention_policy_takes_the_durations_the_cli_takes_and_checks_at_construction() -> None:
    import datetime as dt

    from splitbuild.errors import InvalidInput

    assert splitbuild.RetentionPolicy(older_than="30d").age == dt.timedelta(days=30)
    assert splitbuild.RetentionPolicy(older_than=dt.timedelta(hours=2)).age == dt.timedelta(hours=2)
    assert splitbuild.RetentionPolicy(older_than="1d12h").to_dict()["olderThan"] == "1d12h"
    with pytest.raises(InvalidInput, match="30days"):
        splitbuild.RetentionPolicy(older_than="30days")
    with pytest.raises(InvalidInput, match="older_than must be a timedelta"):
        splitbuild.RetentionPolicy(older_than=30)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="keep_last must be a whole number"):
        splitbuild.RetentionPolicy(keep_last="10")  # type: ignore[arg-type]


def test_the_ops_names_are_the_operations_not_modules_they_shadow() -> None:
    """``ops.copy`` is the operation; the modules behind the operations are private, so no name of
    the namespace is rebound over a submodule. ``graph`` and ``deletion`` are the public building
    blocks for custom retention policies."""
    import pkgutil
    import types

    assert all(not isinstance(getattr(ops, name), types.ModuleType) for name in ops.__all__)
    public = {m.name for m in pkgutil.iter_modules(ops.__path__) if not m.name.startswith("_")}
    assert public == {"deletion", "graph"}
    assert ops.copy.__module__ == "splitbuild.ops._copy"
