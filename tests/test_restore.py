"""repair.restore: every file mode, any size, never a half-written output."""

import numpy as np
import pytest
import torch
from PIL import Image

from repair.restore import as_restorer, restore_files, restore_pil


def brighten(x: torch.Tensor) -> torch.Tensor:
    """A stand-in restorer that visibly changes the image."""
    return (x + 0.2).clamp(-1, 1)


def rgb_array(h=40, w=50):
    return (np.random.default_rng(0).random((h, w, 3)) * 255).astype(np.uint8)


@pytest.mark.parametrize("mode,out_mode", [("L", "L"), ("RGB", "RGB"), ("RGBA", "RGBA"),
                                           ("P", "RGB"), ("LA", "LA"), ("CMYK", "RGB"), ("1", "L")])
def test_modes_keep_size_and_get_restored(mode, out_mode):
    img = Image.fromarray(rgb_array()).convert(mode)
    out = restore_pil(img, brighten)
    assert out.mode == out_mode and out.size == img.size
    before = np.asarray(img.convert("L"), float).mean()
    assert np.asarray(out.convert("L"), float).mean() > before + 10


def test_identity_round_trip_is_near_exact():
    img = Image.fromarray(rgb_array())
    assert np.abs(np.asarray(restore_pil(img.convert("L"), lambda x: x), int)
                  - np.asarray(img.convert("L"), int)).max() == 0
    assert np.abs(np.asarray(restore_pil(img, lambda x: x), int)
                  - np.asarray(img, int)).max() <= 3  # YCbCr rounding


def test_colour_keeps_chroma_and_alpha():
    rgba = np.dstack([rgb_array(), np.linspace(0, 255, 50, dtype=np.uint8)[None].repeat(40, 0)])
    img = Image.fromarray(rgba, "RGBA")
    out = restore_pil(img, brighten)
    assert np.array_equal(np.asarray(out)[..., 3], rgba[..., 3])
    cb_in = np.asarray(img.convert("RGB").convert("YCbCr"))[..., 1:].astype(int)
    cb_out = np.asarray(out.convert("RGB").convert("YCbCr"))[..., 1:].astype(int)
    assert np.abs(cb_in - cb_out).mean() < 3


def test_16bit_stays_16bit():
    array = np.linspace(0, 60000, 40 * 30).reshape(30, 40).astype(np.uint16)
    out = restore_pil(Image.fromarray(array), brighten)
    assert out.mode.startswith("I") and np.asarray(out).max() > 255
    assert np.asarray(out, float).mean() > array.mean()


def test_network_runs_in_tiles_on_odd_sizes():
    net = torch.nn.Conv2d(1, 1, 3, padding=1, padding_mode="reflect", bias=False)
    torch.nn.init.dirac_(net.weight)  # identity convolution
    restorer = as_restorer(net, tile=32, overlap=8, multiple=16)
    img = Image.fromarray(rgb_array(77, 101)).convert("L")
    out = restore_pil(img, restorer)
    assert out.size == img.size
    assert np.abs(np.asarray(out, int) - np.asarray(img, int)).max() <= 1


def test_shape_changing_restorer_is_refused():
    with pytest.raises(ValueError, match="changed the image shape"):
        restore_pil(Image.new("L", (32, 32)), lambda x: x[..., :16, :16])


def test_folder_batch_reports_bad_files_and_never_overwrites(tmp_path, capsys):
    src = tmp_path / "scans"
    (src / "box").mkdir(parents=True)
    Image.fromarray(rgb_array()).save(src / "a.jpg")
    Image.fromarray(rgb_array(30, 30)).convert("P").save(src / "box" / "b.gif")
    (src / "c.png").write_text("not an image")
    before = {p: p.read_bytes() for p in src.rglob("*") if p.is_file()}
    out = tmp_path / "out"
    assert restore_files([src], out, brighten, progress=False) == 1
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == ["a.png", "box/b.png"]
    assert "2 of 3 written" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in src.rglob("*") if p.is_file()} == before
    with pytest.raises(ValueError, match="overwrite an input"):
        restore_files([out / "a.png"], out, brighten, progress=False)


def test_failed_restore_leaves_previous_output_intact(tmp_path):
    Image.fromarray(rgb_array()).save(tmp_path / "a.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"earlier result")

    def broken(x):
        raise ValueError("restorer failed")

    with pytest.raises(ValueError, match="already exist.*--overwrite"):
        restore_files([tmp_path / "a.png"], out, broken, progress=False)   # refused up front
    assert restore_files([tmp_path / "a.png"], out, broken, progress=False, overwrite=True) == 1
    assert (out / "a.png").read_bytes() == b"earlier result"
    assert [p.name for p in out.iterdir()] == ["a.png"]


def _nafnet_checkpoint(path, change=0.0):
    """A small restorer-of-record checkpoint whose global branch adds ``change`` everywhere and
    whose damage head says "damaged" everywhere."""
    from repair.checkpoint import net_record, save_checkpoint
    from repair.nafnet import MaskedNAFRestorer

    net = MaskedNAFRestorer(width=8, enc_blocks=(1, 1), middle_blocks=1, dec_blocks=(1, 1),
                            mask_width=4)
    with torch.no_grad():
        net.gain.bias.copy_(torch.tensor([0.0, change]))
        net.mask_head.bias.fill_(5.0)
    save_checkpoint(path, {"kind": "release", "generator": net_record(net)})
    return path


def test_masks_and_strength_from_the_command_line(tmp_path):
    from repair.cli import main

    ckpt = _nafnet_checkpoint(tmp_path / "n.pt", change=0.4)
    photos = tmp_path / "in"
    photos.mkdir()
    gray = np.full((40, 50), 100, np.uint8)
    Image.fromarray(gray).save(photos / "a.png")
    Image.fromarray(gray).save(photos / "a_mask.png")   # a photo named like a.png's mask
    out = tmp_path / "out"
    assert main(["restore", str(photos / "a.png"), "--out", str(out), "--checkpoint", str(ckpt),
                 "--masks", "--strength", "0.5", "--quiet"]) == 0
    restored = np.asarray(Image.open(out / "a.png"), np.float64)
    assert restored.shape == (40, 50)
    assert np.allclose(restored, 100 + 0.5 * 0.4 * 127.5, atol=1.0)     # half the change
    mask = np.asarray(Image.open(out / "a_mask.png"))
    assert mask.shape == (40, 50) and mask.min() > 250
    before = sorted(p.name for p in out.iterdir())
    assert main(["restore", str(photos), "--out", str(out), "--checkpoint", str(ckpt),
                 "--masks", "--quiet"]) == 2   # a_mask.png photo vs a.png's mask: refused
    assert sorted(p.name for p in out.iterdir()) == before
    assert main(["restore", str(photos / "a.png"), "--out", str(tmp_path / "zero"),
                 "--checkpoint", str(ckpt), "--strength", "0", "--quiet"]) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "zero" / "a.png")), gray)


def test_masks_need_a_restorer_that_finds_damage(tmp_path, capsys):
    from repair.cli import main

    Image.fromarray(np.zeros((20, 20), np.uint8)).save(tmp_path / "a.png")
    assert main(["restore", str(tmp_path / "a.png"), "--out", str(tmp_path / "o"),
                 "--model", "median-clahe", "--masks", "--quiet"]) == 2
    assert "--masks needs" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
