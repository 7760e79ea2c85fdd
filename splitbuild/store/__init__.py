"""Storage backends behind one interface: registries and OCI image layout directories."""

from splitbuild.store.base import BlobOpener, BlobSource, Mounter, Repository

__all__ = ["BlobOpener", "BlobSource", "Mounter", "Repository"]
