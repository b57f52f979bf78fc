"""Reading and writing photographs safely, and the value convention shared by the package.

Images inside the package are float32 tensors in ``[-1, 1]``: ``(1, H, W)`` for one grayscale photo,
``(B, 1, H, W)`` for a batch. Files on disk may be anything Pillow reads; :func:`load_gray` turns
them into that convention or raises :class:`ImageError` with a message that says what to do.
"""

from __future__ import annotations

import glob
import os
import re
import struct
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "IMAGE_EXTENSIONS", "MAX_PIXELS", "MAX_FRAMES", "ImageError", "find_images", "frame_count",
    "read_image", "to_gray_array", "load_gray", "to_unit", "from_unit", "to_uint8", "save_gray",
    "atomic_write_bytes", "clean_stale_temporaries", "center_square",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm", ".ppm", ".pbm",
                    ".webp", ".gif")
MIN_SIDE = 16  # smaller photos carry too little to damage or restore
MAX_PIXELS = 64_000_000
"""The one pixel limit of every command: an image (or one frame of it) with more pixels than this
(8000 x 8000) is refused before it is decoded; decoding it would take several GB. Pillow's own
decompression-bomb limit is set to the same number while a file is opened (never at import)."""
MAX_FRAMES = 1000  # a multi-page TIFF or animated GIF with more frames than this is refused


class ImageError(ValueError):
    """A file that cannot be used as a photograph; the message names the file and the fix."""


def find_images(root: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """All image files under ``root`` (by extension, case-insensitive), sorted.

    Args:
        root: a folder, or a single image file.
        recursive: also look in sub-folders.
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such file or folder; check the path")
    if root.is_file():
        return [root]
    pattern = "**/*" if recursive else "*"
    files = sorted(p for p in root.glob(pattern)
                   if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                   and not any(part.startswith(".") for part in p.relative_to(root).parts))
    if not files:
        raise FileNotFoundError(
            f"{root}: no images found (looked for {', '.join(IMAGE_EXTENSIONS)}"
            f"{' in sub-folders too' if recursive else ''})")
    return files


class _PixelLimit:
    """Pillow's decompression-bomb limit set to ours while a file is opened, then put back."""

    def __init__(self, max_pixels: int):
        self.max_pixels = max_pixels

    def __enter__(self):
        self.saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = self.max_pixels
        self.catcher = warnings.catch_warnings()
        self.catcher.__enter__()
        warnings.simplefilter("error", Image.DecompressionBombWarning)

    def __exit__(self, *exc):
        self.catcher.__exit__(*exc)
        Image.MAX_IMAGE_PIXELS = self.saved


def _too_large(path: Path, pixels: int | str, max_pixels: int) -> ImageError:
    pixels = f"{pixels:,}" if isinstance(pixels, int) else pixels
    return ImageError(f"{path}: {pixels} pixels is too large to decode safely (the limit is "
                      f"{max_pixels:,}, e.g. 8000x8000); shrink or split the scan first")


def _frames(img: Image.Image) -> int:
    if img.format == "MPO":   # a camera JPEG with a preview attached: the first is the photo
        return 1
    return int(getattr(img, "n_frames", 1) or 1)


def frame_count(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> int:
    """The number of frames (pages of a TIFF, frames of a GIF) of an image file; 1 for a file
    that cannot be opened (reading it later gives the clear error)."""
    try:
        with _PixelLimit(max_pixels), Image.open(path) as img:
            return _frames(img)
    except Exception:   # any unreadable file: read_image reports it
        return 1


def read_image(path: str | os.PathLike, max_pixels: int = MAX_PIXELS,
               min_side: int = MIN_SIDE, frame: int | None = None) -> Image.Image:
    """Open and fully decode an image file, with clear errors for every way it can be unusable.

    Args:
        path: the file.
        max_pixels: refuse images with more pixels than this (decompression bombs, huge scans).
        min_side: refuse images whose shorter side is below this.
        frame: which frame of a multi-frame file (0-based). ``None`` refuses a file with more
            than one frame rather than dropping all but the first.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; check the path")
    try:
        with _PixelLimit(max_pixels), Image.open(path) as img:
            frames = _frames(img)
            if frame is None and frames > 1:
                raise ImageError(f"{path}: holds {frames} frames (pages); this command takes "
                                 "single images: split it first (`repair restore` and `repair "
                                 "damage` write one output per frame)")
            if frame:
                img.seek(frame)
            width, height = img.size
            if width * height > max_pixels:
                raise _too_large(path, width * height, max_pixels)
            img.load()
            img = ImageOps.exif_transpose(img)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        found = re.search(r"\((\d+) pixels\)", str(err))
        raise _too_large(path, int(found.group(1)) if found else "more than the limit of",
                         max_pixels) from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image Pillow can read (wrong extension or not an "
                         f"image at all); convert it to PNG or JPEG") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error,
            MemoryError) as err:
        raise ImageError(f"{path}: the file is corrupt or truncated ({err or type(err).__name__})"
                         "; re-export or re-download it") from None
    if min(img.size) < min_side:
        raise ImageError(f"{path}: {img.size[0]}x{img.size[1]} is too small (the shorter side must "
                         f"be at least {min_side} pixels)")
    return img


def to_gray_array(img: Image.Image) -> np.ndarray:
    """Luminance of any Pillow image as float32 in ``[0, 1]``, shape ``(H, W)``.

    Handles 1-bit, 8-bit and 16-bit gray, palette, RGB, CMYK and images with transparency
    (composited over white, as a print on paper would show).
    """
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        array = np.asarray(img, dtype=np.float64)
        top = 65535.0 if array.max() > 255 or img.mode.startswith("I;16") else 255.0
        return np.clip(array / top, 0, 1).astype(np.float32)
    if img.mode == "F":
        array = np.nan_to_num(np.asarray(img, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        return np.clip(array / max(float(array.max()), 1e-8), 0, 1)
    return np.asarray(img.convert("L"), dtype=np.float32) / 255.0


def load_gray(path: str | os.PathLike, max_pixels: int = MAX_PIXELS,
              min_side: int = MIN_SIDE, frame: int | None = None) -> torch.Tensor:
    """Read an image file as a grayscale tensor ``(1, H, W)`` in ``[-1, 1]``.

    Raises:
        FileNotFoundError: the file does not exist.
        ImageError: the file is not a usable image (corrupt, truncated, too small, too large,
            several frames and no ``frame`` chosen).
    """
    array = to_gray_array(read_image(path, max_pixels=max_pixels, min_side=min_side, frame=frame))
    return from_unit(torch.from_numpy(array)[None])


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """Map ``[-1, 1]`` to ``[0, 1]``."""
    return (x + 1) / 2


def from_unit(x: torch.Tensor) -> torch.Tensor:
    """Map ``[0, 1]`` to ``[-1, 1]``."""
    return x * 2 - 1


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """A ``(1, H, W)`` or ``(H, W)`` tensor in ``[-1, 1]`` as an 8-bit ``(H, W)`` array."""
    array = to_unit(x.detach().float().cpu()).clamp(0, 1).squeeze().numpy()
    if array.ndim != 2:
        raise ValueError(f"expected one grayscale image, got shape {tuple(x.shape)}")
    return np.round(array * 255).astype(np.uint8)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` completely or not at all (temporary file, then rename)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_gray(x: torch.Tensor, path: str | os.PathLike) -> Path:
    """Save a ``(1, H, W)`` tensor in ``[-1, 1]`` as an 8-bit grayscale image, atomically.

    The format follows the extension (PNG if there is none we know).
    """
    import io

    path = Path(path)
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        path = path.with_suffix(".png")
    buffer = io.BytesIO()
    fmt = Image.registered_extensions().get(path.suffix.lower(), "PNG")
    Image.fromarray(to_uint8(x), mode="L").save(buffer, format=fmt)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def clean_stale_temporaries(paths, min_age: float = 60.0) -> int:
    """Remove the temporary files an interrupted :func:`atomic_write_bytes` (a SIGKILL mid-write)
    left beside ``paths`` (``.<name>.*.tmp``); returns how many were removed.

    Files younger than ``min_age`` seconds are left alone: they may be another process's write in
    progress.
    """
    import time

    removed = 0
    now = time.time()
    for path in map(Path, paths):
        if not path.parent.is_dir():
            continue
        for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
            try:
                if now - tmp.stat().st_mtime >= min_age:
                    tmp.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
    return removed


def center_square(x: torch.Tensor, size: int) -> torch.Tensor:
    """Centre-crop to a square and resize (antialiased bilinear) to ``size x size``.

    Args:
        x: ``(1, H, W)`` or ``(B, 1, H, W)`` in ``[-1, 1]``.
        size: output side in pixels.
    """
    h, w = x.shape[-2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = x[..., top:top + side, left:left + side]
    if side == size:
        return square.clone()
    batch = square if square.dim() == 4 else square[None]
    out = F.interpolate(batch, size=(size, size), mode="bilinear", antialias=True,
                        align_corners=False).clamp(-1, 1)
    return out if square.dim() == 4 else out[0]
