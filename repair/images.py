"""Reading and writing photographs safely, and the value convention shared by the package.

Images inside the package are float32 tensors in ``[-1, 1]``: ``(1, H, W)`` for one grayscale photo,
``(B, 1, H, W)`` for a batch. Files on disk may be anything Pillow reads; :func:`load_gray` turns
them into that convention or raises :class:`ImageError` with a message that says what to do.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "IMAGE_EXTENSIONS", "ImageError", "find_images", "read_image", "to_gray_array", "load_gray",
    "to_unit", "from_unit", "to_uint8", "save_gray", "atomic_write_bytes",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm", ".ppm", ".pbm",
                    ".webp", ".gif")
MIN_SIDE = 16  # smaller photos carry too little to damage or restore
MAX_PIXELS = 120_000_000  # refuse to decode more than this (about a 11000 x 11000 scan)


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


def read_image(path: str | os.PathLike, max_pixels: int = MAX_PIXELS,
               min_side: int = MIN_SIDE) -> Image.Image:
    """Open and fully decode an image file, with clear errors for every way it can be unusable.

    Args:
        path: the file.
        max_pixels: refuse images with more pixels than this (decompression bombs, huge scans).
        min_side: refuse images whose shorter side is below this.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; check the path")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height = img.size
                if width * height > max_pixels:
                    raise ImageError(
                        f"{path}: {width}x{height} pixels is too large to decode safely "
                        f"(limit {max_pixels:,}); shrink the scan first or raise max_pixels")
                img.load()
                img = ImageOps.exif_transpose(img)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageError(f"{path}: too large to decode safely ({err}); shrink the scan first") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image Pillow can read (wrong extension or not an "
                         f"image at all); convert it to PNG or JPEG") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"{path}: the file is corrupt or truncated ({err}); re-export or "
                         f"re-download it") from None
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
        array = np.asarray(img, dtype=np.float32)
        return np.clip(array / max(float(array.max()), 1e-8), 0, 1)
    return np.asarray(img.convert("L"), dtype=np.float32) / 255.0


def load_gray(path: str | os.PathLike, max_pixels: int = MAX_PIXELS,
              min_side: int = MIN_SIDE) -> torch.Tensor:
    """Read an image file as a grayscale tensor ``(1, H, W)`` in ``[-1, 1]``.

    Raises:
        FileNotFoundError: the file does not exist.
        ImageError: the file is not a usable image (corrupt, truncated, too small, too large).
    """
    array = to_gray_array(read_image(path, max_pixels=max_pixels, min_side=min_side))
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
