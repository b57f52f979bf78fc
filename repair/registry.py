"""Kept for old imports: downloads, hashes and the cache now live in :mod:`repair.zoo`, the one
place that turns a name into weights (``from repair.registry import REGISTRY, fetch`` still works;
``Entry`` is :class:`repair.zoo.WeightsEntry`)."""

from repair.zoo import (REGISTRY, Entry, HashMismatchError, WeightsUnavailableError, cache_folder,
                        fetch, sha256_file)

__all__ = ["Entry", "REGISTRY", "HashMismatchError", "WeightsUnavailableError", "cache_folder",
           "sha256_file", "fetch"]
