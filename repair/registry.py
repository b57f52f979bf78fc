"""Kept for old imports (``from repair.registry import REGISTRY, fetch`` still works): downloads,
hashes and the cache live in :mod:`repair.weights_cache`, weights by name in
:mod:`repair.named_weights` (``Entry`` is :class:`repair.named_weights.WeightsEntry`)."""

from repair.named_weights import REGISTRY, fetch
from repair.named_weights import WeightsEntry as Entry
from repair.weights_cache import (HashMismatchError, WeightsUnavailableError, cache_folder,
                                  sha256_file)

__all__ = ["Entry", "REGISTRY", "HashMismatchError", "WeightsUnavailableError", "cache_folder",
           "sha256_file", "fetch"]
