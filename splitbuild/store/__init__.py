"""Storage backends behind one interface: registries and OCI image layout directories."""

from splitbuild.store.base import BlobOpener, BlobSource, Mounter, ReferrerLister, Repository, TagDeleter

__all__ = ["BlobOpener", "BlobSource", "Mounter", "ReferrerLister", "Repository", "TagDeleter"]
