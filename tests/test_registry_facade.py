"""splitbuild.Registry, used the way the README shows, against the real registry."""

from __future__ import annotations

import uuid

import pytest

import splitbuild
from splitbuild.merge import MergeOptions, parse_sources, parse_targets
from splitbuild.retry import FAST_RETRY
from tests.images import make_buildx_index, make_image, push
from tests.registry_server import RegistryServer

pytestmark = pytest.mark.anyio
PLATFORMS = ["linux/amd64", "linux/arm64"]


async def test_registry_facade_round_trip(registry: RegistryServer, registry2: RegistryServer) -> None:
    repo = f"{registry.host}/facade/{uuid.uuid4().hex[:8]}"
    mirror = f"{registry2.host}/facade/{uuid.uuid4().hex[:8]}"
    async with splitbuild.Registry(retry=FAST_RETRY, env={}) as reg:
        target = reg.repository(splitbuild.parse_reference(repo))
        digests = []
        for p in PLATFORMS:
            image = make_buildx_index(make_image(p, seed="facade"), p, seed="facade")
            await push(target, image)
            digests.append(image.digest)
        targets = parse_targets([f"{repo}:1.2.3"])
        merged = await reg.merge(MergeOptions(targets=targets, sources=parse_sources(digests, targets[0])))
        info = await reg.inspect(f"{repo}:1.2.3")
        assert info.digest == merged.plan.index.digest
        assert [str(c.descriptor.platform) for c in info.children if c.kind == "image"] == PLATFORMS
        assert [c.kind for c in info.children].count("attestation") == 2
        await reg.tag(f"{repo}:1.2.3", ["stable"])
        assert (await reg.list_tags(repo)).tags == ["1.2.3", "stable"]
        copied = await reg.copy(f"{repo}:1.2.3", f"{mirror}:1.2.3")
        assert copied.digest == merged.plan.index.digest
        check = await reg.verify([f"{mirror}:1.2.3"], PLATFORMS, require_attestations=True)
        assert check.ok
        plan = await reg.prune(repo, splitbuild.RetentionPolicy(keep_last=0, include="stable"))
        assert set(plan.plan.remove) == {"stable"}
        assert plan.dry_run
        deleted = await reg.delete(f"{repo}:stable")
        data = deleted.to_dict()
        assert data["digest"] == merged.plan.index.digest
        assert data["plan"]["untagOnly"] == ["stable"]
        assert [u["tag"] for u in data["result"]["untagged"]] == ["stable"]
        assert data["result"]["deleted"] == []  # 1.2.3 still holds the index
        assert (await reg.list_tags(repo)).tags == ["1.2.3"]
