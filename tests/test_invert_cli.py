"""`repair invert`: the arguments, resizing any photo to the generator, masks, per-phase files,
inputs never overwritten, bad files reported while the batch goes on."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
from PIL import Image

from repair.images import load_gray
from repair.inversion import resolve_generator
from repair.invert_cli import add_invert_arguments, parse_steps, run_invert
from repair.stylegan import StyleGAN2Generator
from repair.stylegan_io import save_stylegan


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture()
def generator_file(tmp_path):
    torch.manual_seed(0)
    net_G = StyleGAN2Generator(16, 1, z_dim=16, w_dim=16, mapping_layers=2, channel_base=128,
                               channel_max=16)
    return save_stylegan(net_G, tmp_path / "tiny-G.pt")


def photo(path, size=(40, 30), mode="L", seed=0):
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0]) + ((3,) if mode == "RGB" else ())
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path)
    return path


def run(argv):
    parser = argparse.ArgumentParser()
    add_invert_arguments(parser)
    return run_invert(parser.parse_args(argv))


def test_inverts_any_size_and_mode_to_the_generator_resolution(tmp_path, generator_file):
    inputs = tmp_path / "in"
    inputs.mkdir()
    photo(inputs / "a.png", (40, 30))
    photo(inputs / "b.jpg", (17, 60), mode="RGB", seed=1)
    before = {p.name: p.read_bytes() for p in inputs.iterdir()}
    out = tmp_path / "out"
    status = run([str(inputs), "--out", str(out), "--generator", str(generator_file),
                  "--steps", "2,2,2", "--blur", "0.3", "--contrast", "0.2", "--quiet"])
    assert status == 0
    for name in ("a", "b"):
        restored = load_gray(out / f"{name}.png")
        assert restored.shape == (1, 16, 16)
        assert not (out / f"{name}_w.png").exists()
    assert {p.name: p.read_bytes() for p in inputs.iterdir()} == before


def test_save_phases_writes_one_file_per_phase_and_the_last_is_the_result(tmp_path, generator_file):
    src = photo(tmp_path / "face.png", (32, 32))
    out = tmp_path / "out"
    assert run([str(src), "--out", str(out), "--generator", str(generator_file), "--steps",
                "2,2,2", "--save-phases", "--quiet"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["face.png", "face_w.png", "face_wplus.png", "face_wplusplus.png"]
    assert (out / "face.png").read_bytes() == (out / "face_wplusplus.png").read_bytes()
    # the phases moved the latent: W and W++ restorations differ
    assert not torch.equal(load_gray(out / "face_w.png"), load_gray(out / "face_wplusplus.png"))


def test_mask_file_and_mask_folder(tmp_path, generator_file):
    src = photo(tmp_path / "face.png", (32, 32))
    mask = np.zeros((32, 32), np.uint8)
    mask[8:20, 4:28] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    masks = tmp_path / "masks"
    masks.mkdir()
    Image.fromarray(mask).save(masks / "face_mask.png")
    Image.fromarray(np.full((32, 32), 255, np.uint8)).save(masks / "face.png")  # a decoy: _mask wins
    for mask_arg, out in ((tmp_path / "m.png", tmp_path / "o1"), (masks, tmp_path / "o2")):
        assert run([str(src), "--out", str(out), "--generator", str(generator_file), "--steps",
                    "2,0,2", "--mask", str(mask_arg), "--quiet"]) == 0
        assert (out / "face.png").is_file()
    # same mask either way, same seed: same result
    assert (tmp_path / "o1" / "face.png").read_bytes() == (tmp_path / "o2" / "face.png").read_bytes()


def test_a_mask_changes_the_result(tmp_path, generator_file):
    src = photo(tmp_path / "face.png", (32, 32))
    mask = np.zeros((32, 32), np.uint8)
    mask[:, :20] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    common = [str(src), "--generator", str(generator_file), "--steps", "3,3,0", "--quiet"]
    assert run(common + ["--out", str(tmp_path / "plain")]) == 0
    assert run(common + ["--out", str(tmp_path / "masked"), "--mask", str(tmp_path / "m.png")]) == 0
    assert (tmp_path / "plain" / "face.png").read_bytes() != \
        (tmp_path / "masked" / "face.png").read_bytes()


def test_bad_file_is_reported_and_the_batch_goes_on(tmp_path, generator_file, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    photo(inputs / "good.png")
    (inputs / "broken.png").write_bytes(b"not an image at all")
    out = tmp_path / "out"
    status = run([str(inputs), "--out", str(out), "--generator", str(generator_file), "--steps",
                  "1,1,1", "--quiet"])
    assert status == 1
    assert (out / "good.png").is_file() and not (out / "broken.png").exists()
    assert "broken.png" in capsys.readouterr().err


def test_never_overwrites_inputs(tmp_path, generator_file):
    src = photo(tmp_path / "face.png")
    with pytest.raises(ValueError, match="overwrite an input"):
        run([str(src), "--out", str(tmp_path), "--generator", str(generator_file), "--quiet"])


def test_missing_mask_for_one_input_is_a_reported_failure(tmp_path, generator_file, capsys):
    src = photo(tmp_path / "face.png")
    (tmp_path / "masks").mkdir()
    status = run([str(src), "--out", str(tmp_path / "o"), "--generator", str(generator_file),
                  "--steps", "1,1,1", "--mask", str(tmp_path / "masks"), "--quiet"])
    assert status == 1
    assert "no mask" in capsys.readouterr().err


def test_bad_arguments_rejected_clearly(tmp_path, generator_file):
    for bad in ("1,2", "a,b,c", "-1,2,3", "0,0,0"):
        with pytest.raises(argparse.ArgumentTypeError, match="three"):
            parse_steps(bad)
    assert parse_steps("150,150,0") == (150, 150, 0)
    with pytest.raises(SystemExit):
        run([str(tmp_path), "--out", "o", "--blur", "1.5"])
    with pytest.raises(FileNotFoundError, match="known name"):
        resolve_generator("no-such-generator")
    not_a_generator = tmp_path / "x.pt"
    torch.save({"kind": "something else"}, not_a_generator)
    with pytest.raises(ValueError, match="not a StyleGAN2 generator"):
        resolve_generator(str(not_a_generator))


def test_help_says_inputs_are_resized(capsys):
    parser = argparse.ArgumentParser()
    add_invert_arguments(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "resized to the generator's resolution" in text and "--steps N,N,N" in text


def test_default_generator_is_the_committed_one():
    from repair.named_weights import COMMITTED

    path = COMMITTED / "stylegan-faces64.pt"
    if not path.is_file():
        pytest.skip("checkpoints/stylegan-faces64.pt not exported yet")
    net_G = resolve_generator()
    assert (net_G.resolution, net_G.channels) == (64, 1)
    assert path.stat().st_size < 30e6


def test_export_generator_from_a_training_checkpoint_then_invert(tmp_path):
    from repair.gantrain import GANTrainer, TrainConfig, export_generator
    from repair.stylegan_io import load_stylegan

    cfg = TrainConfig(resolution=16, z_dim=16, w_dim=16, mapping_layers=2, channel_base=128,
                      channel_max=16, batch_size=2)
    trainer = GANTrainer(cfg, torch.rand(4, 1, 16, 16) * 2 - 1)
    trainer.train_step()
    ckpt = trainer.save(tmp_path / "run" / "checkpoint.pt")
    out = export_generator(ckpt, tmp_path / "G.pt")
    assert out.stat().st_size < ckpt.stat().st_size / 2  # generator only, no D or optimisers
    assert load_gray(tmp_path / "G-samples.png").shape == (1, 128, 128)
    payload = torch.load(out, weights_only=True)
    assert (payload["step"], payload["nimg"]) == (1, 2) and payload["train_config"]["resolution"] == 16
    net_G = load_stylegan(out)
    z = torch.randn(2, 16)
    with torch.no_grad():
        torch.testing.assert_close(net_G(z, noise_mode="const"),
                                   trainer.net_G_ema(z, noise_mode="const"))
    src = photo(tmp_path / "face.png")
    assert run([str(src), "--out", str(tmp_path / "o"), "--generator", str(out), "--steps",
                "1,1,1", "--quiet"]) == 0
    with pytest.raises(ValueError, match="not a repair.gantrain checkpoint"):
        export_generator(out, tmp_path / "again.pt")
