"""Paired (clean, damaged, mask) datasets of grayscale photos.

Three sources of clean photos, one pairing:

* :func:`skimage_photos` - the photographs bundled with scikit-image: no files, no network, so the
  ``tiny`` profile and a first ``make book`` work anywhere.
* :func:`find_images` on any folder (recursive) - ``../shared/data/train`` for the ``book`` profile.
* :func:`imagenette_files` - Imagenette through torchvision, the paper's data (9469 training and
  3925 validation photos; the ``paper`` profile; downloading needs internet).

:class:`PairedDataset` crops each photo and damages it with :func:`repair.damage.damage`. Training
pairs get a fresh crop and fresh damage every epoch (call :meth:`PairedDataset.set_epoch`);
evaluation pairs are fixed: centre crop and damage seeded by the index.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from repair.config import Config, data_root, imagenette_root
from repair.damage import PAPER_MIX, damage, random_mix
from repair.images import ImageError, find_images, from_unit, load_gray

__all__ = [
    "SKIMAGE_PHOTOS", "skimage_photos", "imagenette_files", "check_images", "split_files",
    "fit_size", "random_rescale", "PairedDataset", "make_datasets", "make_loader",
]

SKIMAGE_PHOTOS = ("camera", "astronaut", "coffee", "chelsea", "rocket", "moon", "coins", "clock",
                  "grass", "gravel", "brick", "hubble_deep_field", "cell", "page")
"""Photographs that ship inside the scikit-image wheel (no download)."""

IMAGENETTE_SIZES = {"full": "imagenette2", "320px": "imagenette2-320", "160px": "imagenette2-160"}


def skimage_photos(names: Sequence[str] = SKIMAGE_PHOTOS) -> list[torch.Tensor]:
    """The photos bundled with scikit-image as grayscale ``(1, H, W)`` tensors in ``[-1, 1]``."""
    import skimage.color
    import skimage.data

    photos = []
    for name in names:
        array = getattr(skimage.data, name)()
        if array.ndim == 3:
            array = skimage.color.rgb2gray(array[..., :3])
        array = array.astype(np.float32) / (255.0 if array.max() > 1 else 1.0)
        photos.append(from_unit(torch.from_numpy(array))[None])
    return photos


def imagenette_files(root: str | os.PathLike, split: str = "train", size: str = "full",
                     download: bool = False) -> list[Path]:
    """The photo files of Imagenette's ``split`` through torchvision (downloads if asked).

    Args:
        root: folder holding (or to hold) ``imagenette2*/{train,val}/<wnid>/*.JPEG``.
        split: ``"train"`` (9469 photos) or ``"val"`` (3925 photos).
        size: ``"full"``, ``"320px"`` or ``"160px"`` (torchvision's archives).
        download: fetch and unpack the archive if it is missing (about 1.5 GB for ``full``).
    """
    from torchvision.datasets import Imagenette

    try:
        dataset = Imagenette(str(root), split=split, size=size, download=download)
    except RuntimeError as err:
        raise FileNotFoundError(
            f"Imagenette not found under {root}/{IMAGENETTE_SIZES.get(size, '?')}: pass "
            f"download=True (or --download) on a machine with internet ({err})") from None
    return [Path(path) for path, _ in dataset._samples]  # torchvision keeps the list private


def check_images(files: Sequence[Path], progress: bool = False) -> tuple[list[Path], list[str]]:
    """Split ``files`` into readable photos and messages about the ones that are not."""
    from tqdm.auto import tqdm

    good, bad = [], []
    for path in tqdm(files, desc="checking photos", disable=not progress):
        try:
            load_gray(path)
            good.append(Path(path))
        except (ImageError, FileNotFoundError) as err:
            bad.append(str(err))
    return good, bad


def split_files(items: Sequence, val_fraction: float = 0.1, seed: int = 0) -> tuple[list, list]:
    """A fixed, seeded split of ``items`` into (train, validation); at least one of each."""
    if len(items) < 2:
        raise ValueError(f"need at least 2 photos to split off a validation set, got {len(items)}")
    order = np.random.default_rng(seed).permutation(len(items))
    n_val = min(max(1, round(len(items) * val_fraction)), len(items) - 1)
    val = sorted(order[:n_val])
    train = sorted(order[n_val:])
    return [items[i] for i in train], [items[i] for i in val]


class PairedDataset(Dataset):
    """(x_clean, x_damaged, mask) triples, each ``(1, S, S)``, from a list of photos.

    Args:
        photos: image files, or ``(1, H, W)`` tensors in ``[-1, 1]`` already in memory.
        image_size: side ``S`` of the square crops.
        train: random crops, flips and fresh damage per epoch; else centre crops, fixed damage.
        mode: ``"crop"`` cuts ``S x S`` at the photo's own resolution (the shorter side is
            enlarged to ``S`` first if needed); ``"resize"`` squashes the whole photo to ``S x S``
            as the paper did.
        seed: base seed of crops and damage.
        damage_kwargs: strengths passed to :func:`repair.damage.damage` (default: the paper's mix).
        cache: keep decoded photos in memory.
        scale: training only, ``(low, high)``: shrink each photo by a random factor in this range
            before cropping (never below the crop size), so the network sees detail at the scales
            of photos that were resized for it (evaluation resizes whole photos to 256x256).
        jitter: training only: vary the damage per pair with :func:`repair.damage.random_mix`
            (each damage off with probability 1/4, else 0.5-1.5 times its strength).
    """

    def __init__(self, photos: Sequence[Path | torch.Tensor], image_size: int, train: bool,
                 mode: str = "crop", seed: int = 0, damage_kwargs: dict | None = None,
                 cache: bool = True, scale: tuple[float, float] | None = None,
                 jitter: bool = False) -> None:
        if mode not in ("crop", "resize"):
            raise ValueError(f"mode must be 'crop' or 'resize', got {mode!r}")
        if scale is not None and not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f"scale must be (low, high) with 0 < low <= high <= 1, got {scale}")
        if len(photos) == 0:
            raise ValueError("no photos given")
        if image_size < 8:
            raise ValueError(f"image_size must be at least 8, got {image_size}")
        self.photos = list(photos)
        self.image_size, self.train, self.mode, self.seed = image_size, train, mode, seed
        self.damage_kwargs = dict(PAPER_MIX if damage_kwargs is None else damage_kwargs)
        self.cache, self.scale, self.jitter = cache, scale, jitter
        self.epoch = 0
        self._decoded: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.photos)

    def set_epoch(self, epoch: int) -> None:
        """Draw new crops and damage for training epoch ``epoch`` (no effect on evaluation)."""
        self.epoch = epoch

    def photo(self, idx: int) -> torch.Tensor:
        """The full clean photo ``idx`` as ``(1, H, W)`` in ``[-1, 1]``."""
        if idx in self._decoded:
            return self._decoded[idx]
        item = self.photos[idx]
        x = item if isinstance(item, torch.Tensor) else load_gray(item)
        if self.cache:
            self._decoded[idx] = x
        return x

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.train:
            crop_rng = np.random.default_rng([self.seed, self.epoch, idx, 0])
            damage_seed = [[self.seed, self.epoch, idx, 1]]
        else:
            crop_rng, damage_seed = None, [[self.seed, idx]]
        photo, strengths = self.photo(idx), self.damage_kwargs
        if self.train and self.scale is not None and self.mode == "crop":
            photo = random_rescale(photo, self.image_size, self.scale, crop_rng)
        if self.train and self.jitter:
            strengths = random_mix(strengths, np.random.default_rng([self.seed, self.epoch, idx, 2]))
        x_clean = fit_size(photo, self.image_size, crop_rng, self.mode).contiguous()
        x_damaged, mask = damage(x_clean, seed=damage_seed, **strengths)
        return x_clean, x_damaged, mask


def random_rescale(x: torch.Tensor, size: int, scale: tuple[float, float],
                   rng: np.random.Generator) -> torch.Tensor:
    """Shrink a ``(1, H, W)`` photo by a random factor in ``scale``, keeping both sides >= ``size``.

    Photos too small for the factor drawn are shrunk less (or not at all).
    """
    import torch.nn.functional as F

    height, width = x.shape[-2:]
    factor = max(float(rng.uniform(*scale)), size / min(height, width))
    if factor >= 1:
        return x
    new = (max(size, round(height * factor)), max(size, round(width * factor)))
    return F.interpolate(x[None], size=new, mode="bilinear", antialias=True,
                         align_corners=False)[0].clamp(-1, 1)


def fit_size(x: torch.Tensor, size: int, rng: np.random.Generator | None = None,
             mode: str = "crop") -> torch.Tensor:
    """Cut or resize a ``(1, H, W)`` photo to ``(1, size, size)``.

    Args:
        x: the photo, values in ``[-1, 1]``.
        size: the side of the result.
        rng: ``None`` for a centre crop; a generator for a random crop and a random flip.
        mode: ``"crop"`` keeps the photo's resolution (enlarging it only if a side is shorter
            than ``size``); ``"resize"`` squashes the whole photo to ``size x size``.
    """
    import torch.nn.functional as F

    if mode == "resize":
        return F.interpolate(x[None], size=(size, size), mode="bilinear", antialias=True,
                             align_corners=False)[0]
    height, width = x.shape[-2:]
    if min(height, width) < size:
        scale = size / min(height, width)
        height, width = max(size, round(height * scale)), max(size, round(width * scale))
        x = F.interpolate(x[None], size=(height, width), mode="bilinear", antialias=True,
                          align_corners=False)[0]
    if rng is None:
        top, left = (height - size) // 2, (width - size) // 2
    else:
        top, left = int(rng.integers(height - size + 1)), int(rng.integers(width - size + 1))
    x = x[:, top:top + size, left:left + size]
    if rng is not None and rng.random() < 0.5:
        x = x.flip(-1)
    return x


def _photo_list(cfg: Config, root: str | os.PathLike | None, split: str, progress: bool
                ) -> list[Path | torch.Tensor]:
    if cfg.source == "skimage":
        return skimage_photos()
    if cfg.source == "imagenette":
        return imagenette_files(imagenette_root() if root is None else root, split=split,
                                download=cfg.extra.get("download", False))
    if cfg.source == "folder":
        folder = Path(root) if root is not None else data_root() / "train"
        files, bad = check_images(find_images(folder), progress=progress)
        for message in bad:
            warnings.warn(f"skipping {message}", stacklevel=3)
        if not files:
            raise FileNotFoundError(f"{folder}: none of the images could be read")
        return files
    raise ValueError(f"unknown data source {cfg.source!r}: use 'skimage', 'folder' or 'imagenette'")


def make_datasets(cfg: Config, root: str | os.PathLike | None = None, seed: int = 0,
                  val_fraction: float = 0.1, damage_kwargs: dict | None = None,
                  progress: bool = False, scale: tuple[float, float] | None = None,
                  jitter: bool = False, val_size: int | None = None
                  ) -> tuple[PairedDataset, PairedDataset]:
    """Training and validation pairs for a profile.

    Imagenette uses its own train/val split at 256x256 (resized, as the paper); other sources
    carve a fixed validation split out of the photos (``val_fraction``), so that ``eval/`` folders
    are never needed to pick epochs. ``scale`` and ``jitter`` vary the training pairs (see
    :class:`PairedDataset`); ``val_size`` crops validation pairs to another size than training.
    """
    if cfg.source == "imagenette":
        train_photos = _photo_list(cfg, root, "train", progress)
        val_photos = _photo_list(cfg, root, "val", progress)
        mode = "resize"
    else:
        train_photos, val_photos = split_files(_photo_list(cfg, root, "train", progress),
                                               val_fraction, seed)
        mode = "crop"
    if cfg.num_images is not None:
        train_photos = train_photos[:cfg.num_images]
        val_photos = val_photos[:max(1, cfg.num_images // 2)]
    kwargs = dict(mode=mode, seed=seed, damage_kwargs=damage_kwargs,
                  cache=cfg.source != "imagenette")
    return (PairedDataset(train_photos, cfg.image_size, train=True, scale=scale, jitter=jitter,
                          **kwargs),
            PairedDataset(val_photos, val_size or cfg.image_size, train=False, **kwargs))


def make_loader(dataset: Dataset, batch_size: int, shuffle: bool, num_workers: int = 0,
                seed: int = 0, drop_last: bool = False,
                worker_init_fn: Callable | None = None) -> DataLoader:
    """A DataLoader with a seeded shuffle order (workers rebuild their damage from the seeds)."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers,
                      generator=generator, drop_last=drop_last, worker_init_fn=worker_init_fn,
                      persistent_workers=False, pin_memory=False)
