"""Reading photos: every mode handled on purpose, every bad file a clear error."""

import numpy as np
import pytest
import torch
from PIL import Image

from repair.images import (MAX_PIXELS, ImageError, find_images, from_unit, load_gray, save_gray,
                           to_uint8, to_unit)

from conftest import save_png


def test_round_trip_8bit(tmp_path):
    array = np.arange(64 * 64, dtype=np.uint32).reshape(64, 64).astype(np.uint8)
    x = load_gray(save_png(tmp_path / "a.png", array))
    assert x.shape == (1, 64, 64) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1
    out = save_gray(x, tmp_path / "b.png")
    assert np.array_equal(np.asarray(Image.open(out)), array)


def test_value_convention():
    x = torch.tensor([0.0, 0.5, 1.0])
    assert torch.equal(from_unit(x), torch.tensor([-1.0, 0.0, 1.0]))
    assert torch.equal(to_unit(from_unit(x)), x)


def test_rgb_becomes_luminance(tmp_path):
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[..., 1] = 255  # pure green is bright
    x = load_gray(save_png(tmp_path / "g.png", rgb))
    assert x.mean() > 0  # brighter than mid-gray


def test_rgba_is_composited_over_white(tmp_path):
    rgba = np.zeros((32, 32, 4), np.uint8)  # black, fully transparent
    x = load_gray(save_png(tmp_path / "t.png", rgba, "RGBA"))
    assert torch.allclose(x, torch.ones_like(x))


def test_16bit_png_keeps_its_range(tmp_path):
    array = np.full((32, 32), 32768, np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(array).save(path)
    assert Image.open(path).mode.startswith("I")
    x = load_gray(path)
    assert x.mean().item() == pytest.approx(from_unit(torch.tensor(32768 / 65535)).item(), abs=1e-3)


def test_palette_image(tmp_path):
    img = Image.fromarray(np.tile(np.arange(32, dtype=np.uint8) * 8, (32, 1))).convert("P")
    img.save(tmp_path / "p.png")
    x = load_gray(tmp_path / "p.png")
    assert x.shape == (1, 32, 32) and x[0, 0, -1] > x[0, 0, 0]


def test_16bit_tiff_and_pgm(tmp_path):
    Image.fromarray(np.full((20, 20), 65535, np.uint16)).save(tmp_path / "w.tif")
    assert torch.allclose(load_gray(tmp_path / "w.tif"), torch.ones(1, 20, 20))
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(tmp_path / "b.pgm")
    assert torch.allclose(load_gray(tmp_path / "b.pgm"), -torch.ones(1, 20, 20))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_gray(tmp_path / "nope.png")


def test_text_file_named_png(tmp_path):
    (tmp_path / "notes.png").write_text("this is not an image")
    with pytest.raises(ImageError, match="not an image"):
        load_gray(tmp_path / "notes.png")


def test_truncated_jpeg(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (128, 128), dtype=np.uint8)).save(tmp_path / "a.jpg")
    data = (tmp_path / "a.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="corrupt or truncated"):
        load_gray(tmp_path / "cut.jpg")


def test_too_small(tmp_path):
    with pytest.raises(ImageError, match="too small"):
        load_gray(save_png(tmp_path / "tiny.png", np.zeros((8, 8), np.uint8)))


def test_too_large_is_refused_before_decoding(tmp_path):
    path = tmp_path / "huge.png"
    Image.new("1", (12000, 11000)).save(path)  # 132 Mpx, a few kB on disk
    with pytest.raises(ImageError, match="132,000,000 pixels is too large to decode safely"):
        load_gray(path)
    Image.new("1", (9000, 9000)).save(path)    # 81 Mpx: under Pillow's own 89.5 Mpx warning
    with pytest.raises(ImageError, match=f"limit is {MAX_PIXELS:,}"):
        load_gray(path)
    assert Image.MAX_IMAGE_PIXELS != MAX_PIXELS    # Pillow's setting is put back after loading
    with pytest.raises(ImageError, match="too large"):
        load_gray(save_png(tmp_path / "s.png", np.zeros((40, 40), np.uint8)), max_pixels=1000)


def test_find_images_recursive_and_errors(photo_folder, tmp_path):
    (photo_folder / "readme.txt").write_text("not a photo")
    files = find_images(photo_folder)
    assert len(files) == 5 and all(f.suffix == ".png" for f in files)
    assert len(find_images(photo_folder, recursive=False)) == 3
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        find_images(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no images found"):
        find_images(tmp_path / "empty")


def test_save_is_atomic_on_failure(tmp_path, photo):
    target = tmp_path / "keep.png"
    target.write_bytes(b"previous result")
    with pytest.raises(ValueError):
        save_gray(torch.zeros(2, 8, 8), target)  # two images: refused
    assert target.read_bytes() == b"previous result"
    assert list(tmp_path.iterdir()) == [target]  # no temporary file left behind


def test_to_uint8_clamps(photo):
    array = to_uint8(photo * 3)
    assert array.dtype == np.uint8 and array.min() == 0 and array.max() == 255


def test_written_files_are_readable_by_others(tmp_path, photo):
    import stat
    out = save_gray(photo, tmp_path / "shared.png")
    assert out.stat().st_mode & stat.S_IRGRP
