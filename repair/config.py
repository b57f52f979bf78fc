"""Run sizes for every notebook, the command line and the tests: one table of named profiles.

``tiny``  smoke run for CI: seconds per notebook, tiny images, no data files needed.
``book``  what the rendered book shows: minutes on a laptop CPU, uses the committed checkpoints.
``paper`` the paper's exact setup: Imagenette at 256x256, 10 epochs, on a GPU.

A profile holds the sizes of a run; how a network is trained (optimiser, learning rate, betas,
batch size, loss weights) belongs to its recipe, :mod:`repair.recipes`, the one place for them.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Config", "PROFILES", "get_config", "default_profile", "data_root", "imagenette_root"]


@dataclass(frozen=True)
class Config:
    """Every size-dependent setting of the course, for one profile."""

    profile: str
    # data (chapter 01)
    source: str  # "skimage" (bundled photos, no files), "folder" or "imagenette"
    image_size: int  # side of the square crops fed to the networks
    num_images: int | None  # cap on the number of photos read (None: all)
    num_workers: int
    # training (chapter 03); the optimiser settings are the recipe's (repair.recipes)
    num_epochs: int
    max_steps: int | None = None  # stop after this many optimiser steps (smoke runs)
    # networks (chapter 02)
    ngf: int = 64
    ndf: int = 64
    # evaluation (chapter 04) and inversion (chapter 05)
    eval_size: int = 256
    eval_limit: int | None = None  # images per evaluation set (None: all of them)
    inversion_steps: tuple[int, int, int] = (150, 150, 150)
    extra: dict = field(default_factory=dict)

    def replace(self, **changes) -> "Config":
        """A copy with some fields changed (unknown names raise ``TypeError``)."""
        return dataclasses.replace(self, **changes)


PROFILES: dict[str, Config] = {
    "tiny": Config(
        profile="tiny", source="skimage", image_size=32, num_images=4, num_workers=0,
        num_epochs=1, max_steps=2, ngf=8, ndf=8, eval_size=32, eval_limit=2,
        inversion_steps=(2, 2, 2),
    ),
    "book": Config(
        profile="book", source="folder", image_size=64, num_images=None,
        num_workers=2, num_epochs=10, ngf=32, ndf=32, eval_size=256, eval_limit=6,
        inversion_steps=(150, 150, 150),
    ),
    "paper": Config(
        profile="paper", source="imagenette", image_size=256, num_images=None,
        num_workers=4, num_epochs=10, ngf=64, ndf=64, eval_size=256, eval_limit=None,
        inversion_steps=(150, 150, 150),
    ),
}


def default_profile() -> str:
    """``$REPAIR_PROFILE`` if set, else ``tiny`` under CI (``$CI`` set, to anything: the same rule
    as the notebooks' ``parameters`` cells), else ``book``."""
    return os.environ.get("REPAIR_PROFILE") or ("tiny" if "CI" in os.environ else "book")


def get_config(profile: str | None = None, **overrides) -> Config:
    """The named profile's config, with ``overrides`` applied.

    Args:
        profile: ``"tiny"``, ``"book"`` or ``"paper"``; ``None`` picks :func:`default_profile`.
        **overrides: field values to change, e.g. ``image_size=128``.
    """
    name = profile or default_profile()
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}: choose one of {', '.join(PROFILES)}")
    return PROFILES[name].replace(**overrides) if overrides else PROFILES[name]


def data_root() -> Path:
    """Where the offline photos live: ``$REPAIR_DATA``, else ``../shared/data`` beside the repo."""
    env = os.environ.get("REPAIR_DATA")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


def imagenette_root() -> Path:
    """Where the ``paper`` profile keeps Imagenette (``imagenette2/`` is downloaded into it once):
    ``$REPAIR_IMAGENETTE``, else ``~/data``."""
    return Path(os.environ.get("REPAIR_IMAGENETTE") or "~/data").expanduser()
