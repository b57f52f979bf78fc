"""StyleGAN2 generator/discriminator, W / W+ / W++ styles, checkpoints, NVIDIA pickles, training."""

from __future__ import annotations

import pickle
import sys

import pytest
import torch

from repair import gantrain, gantrain_cli
from repair.checkpoint_check import CheckpointError
from repair.stylegan import StyleGAN2Discriminator, StyleGAN2Generator, to_gray
from repair.stylegan_io import (convert_nvidia_pickle, load_stylegan, nvidia_generator_config,
                                save_stylegan)

from fakes import write_nvidia_pickle


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_G(resolution=16, channels=1, **kw) -> StyleGAN2Generator:
    torch.manual_seed(0)
    kw = {"z_dim": 16, "w_dim": 16, "mapping_layers": 2, "channel_base": 128,
          "channel_max": 16, **kw}
    net_G = StyleGAN2Generator(resolution, channels, **kw)
    with torch.no_grad():  # noise strength starts at 0: make the noise inputs matter
        for conv in net_G.convs:
            conv.noise_strength.fill_(0.1)
    return net_G


@pytest.mark.parametrize("resolution,channels", [(16, 1), (32, 3), (4, 1)])
def test_generator_shapes(resolution, channels):
    net_G = tiny_G(resolution, channels)
    assert net_G.num_ws == 2 * (resolution.bit_length() - 1) - 2
    img = net_G(torch.randn(3, 16))
    assert img.shape == (3, channels, resolution, resolution)
    assert torch.isfinite(img).all() and img.std() > 0


def test_bad_sizes_rejected():
    with pytest.raises(ValueError, match="power of two"):
        StyleGAN2Generator(48)
    with pytest.raises(ValueError, match="channels"):
        StyleGAN2Generator(16, channels=2)
    with pytest.raises(ValueError, match="styles must be"):
        tiny_G().synthesis(torch.zeros(2, 5, 16))


def test_widths_follow_channel_base():
    net_G = StyleGAN2Generator(32, 1, z_dim=8, w_dim=8, channel_base=256, channel_max=32)
    assert [c.out_channels for c in net_G.convs] == [32, 32, 32, 16, 16, 8, 8]
    assert net_G.max_channels == 32


def test_fir_upsample_is_zero_insertion_then_filter():
    """NVIDIA's upfirdn2d semantics: insert zeros, pad, convolve with [1,3,3,1]^2 x 4."""
    from repair.stylegan import fir_filter, fir_upsample

    x = torch.randn(2, 3, 5, 5)
    kernel = fir_filter()
    assert kernel.sum().item() == pytest.approx(1.0)

    def reference(x, pad0, pad1):
        up = torch.zeros(2, 3, 10, 10)
        up[..., ::2, ::2] = x
        up = torch.nn.functional.pad(up, (pad0, pad1, pad0, pad1))
        return torch.nn.functional.conv2d(up, (kernel * 4).expand(3, 1, 4, 4), groups=3)

    torch.testing.assert_close(fir_upsample(x, kernel, crop=0), reference(x, 3, 2))
    torch.testing.assert_close(fir_upsample(x, kernel, crop=1), reference(x, 2, 1))


def test_w_wplus_wplusplus_agree_when_repeated():
    """Filter-wise modulation with every filter's latent equal is layer-wise modulation."""
    net_G = tiny_G(32, 3)
    w = net_G.mapping(torch.randn(2, 16))  # (2, 16)
    w_plus = w[:, None].repeat(1, net_G.num_ws, 1)
    w_pp = w_plus[:, :, None].repeat(1, 1, net_G.max_channels, 1)
    img_w = net_G.synthesis(w)
    torch.testing.assert_close(net_G.synthesis(w_plus), img_w, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(net_G.synthesis(w_pp), img_w, rtol=1e-4, atol=1e-5)


def test_filterwise_styles_act_per_filter():
    net_G = tiny_G(16, 1, channel_base=64)  # widths 16, 8, 4 at 4, 8, 16 px
    w_pp = torch.randn(1, net_G.num_ws, net_G.max_channels, 16)
    base = net_G.synthesis(w_pp)
    changed = w_pp.clone()
    changed[:, 3, 0] += 1.0  # filter 0 of style input 3
    assert not torch.allclose(net_G.synthesis(changed), base)
    unused = w_pp.clone()
    unused[:, -1, 1:] += 5.0  # the last style input only feeds the 1-channel ToImage
    unused[:, 4, 4:] += 5.0  # style input 4 feeds only a 4-filter layer
    torch.testing.assert_close(net_G.synthesis(unused), base)


def test_gradients_reach_wplusplus():
    net_G = tiny_G(16, 1, channel_base=64)
    w_pp = torch.randn(2, net_G.num_ws, net_G.max_channels, 16, requires_grad=True)
    net_G.synthesis(w_pp).square().mean().backward()
    norms = w_pp.grad.norm(dim=-1)  # (2, N_L, C)
    assert (norms[:, 0] > 0).all()  # 4 px conv: all 16 filters used
    assert (norms[:, 4, :4] > 0).all() and (norms[:, 4, 4:] == 0).all()
    assert (norms[:, -1, :1] > 0).all() and (norms[:, -1, 1:] == 0).all()


def test_noise_modes():
    net_G = tiny_G()
    w = net_G.mapping(torch.randn(1, 16))
    torch.testing.assert_close(net_G.synthesis(w, "const"), net_G.synthesis(w, "const"))
    assert not torch.allclose(net_G.synthesis(w, "random"), net_G.synthesis(w, "const"))
    with pytest.raises(ValueError, match="noise_mode"):
        net_G.synthesis(w, "sometimes")


def test_mean_latent_and_truncation():
    net_G = tiny_G()
    mean = net_G.mean_latent(256)
    assert mean.shape == (1, 16)
    net_G.mapping.w_avg.copy_(mean[0])
    z = torch.randn(4, 16)
    torch.testing.assert_close(net_G.mapping(z, truncation_psi=0.0), mean.expand(4, -1))


def test_discriminator():
    net_D = StyleGAN2Discriminator(16, 1, channel_base=128, channel_max=16)
    x = torch.randn(6, 1, 16, 16, requires_grad=True)
    logits = net_D(x)
    assert logits.shape == (6,)
    logits.sum().backward()
    assert x.grad.abs().sum() > 0


def test_to_gray():
    rgb = torch.stack([torch.full((2, 2), v) for v in (1.0, -1.0, 0.5)])[None]
    torch.testing.assert_close(to_gray(rgb), torch.full((1, 1, 2, 2), 0.299 - 0.587 + 0.057))
    gray = torch.rand(1, 1, 2, 2)
    assert to_gray(gray) is gray


def test_save_load_roundtrip(tmp_path):
    net_G = tiny_G(16, 3)
    path = save_stylegan(net_G, tmp_path / "g.pt")
    loaded = load_stylegan(path)
    w = net_G.mapping(torch.randn(2, 16))
    torch.testing.assert_close(loaded.synthesis(w), net_G.synthesis(w))
    assert not any(p.requires_grad for p in loaded.parameters())
    assert not list(tmp_path.glob("*.tmp"))


def test_other_checkpoint_rejected(tmp_path):
    path = tmp_path / "unet.pt"
    torch.save({"kind": "repair.UNetGenerator", "state_dict": {"x": torch.zeros(1)}}, path)
    with pytest.raises(CheckpointError, match="not a StyleGAN2 generator"):
        load_stylegan(path)
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="StyleGAN2"):
        load_stylegan(tmp_path / "plain.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read this file as a checkpoint"):
        load_stylegan(tmp_path / "junk.pt")
    with pytest.raises(FileNotFoundError):
        load_stylegan(tmp_path / "missing.pt")


# ---------------------------------------------------------------- a fake NVIDIA pickle

@pytest.fixture
def fake_nvidia_pickle(tmp_path):
    """A .pkl shaped like stylegan2-ada-pytorch's (see fakes.write_nvidia_pickle)."""
    net_G = tiny_G(16, 3, conv_clamp=256)
    with torch.no_grad():
        net_G.mapping.w_avg.normal_()
    return write_nvidia_pickle(net_G, tmp_path / "fake-nvidia.pkl"), net_G


def test_convert_nvidia_pickle_roundtrip(fake_nvidia_pickle):
    path, net_G = fake_nvidia_pickle
    assert "torch_utils.persistence" not in sys.modules
    state = convert_nvidia_pickle(path)
    assert set(state) == set(net_G.state_dict())
    assert nvidia_generator_config(state, 256) == net_G.config
    assert nvidia_generator_config(state)["conv_clamp"] is None
    loaded = load_stylegan(path)  # the .pkl path goes through the converter
    assert loaded.config == net_G.config  # conv_clamp read from the layers' attributes
    w = torch.randn(2, 16)
    torch.testing.assert_close(loaded.synthesis(w), net_G.synthesis(w))
    torch.testing.assert_close(loaded.mapping.w_avg, net_G.mapping.w_avg)


def test_nvidia_pickle_runs_no_code(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            import os
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": Evil()}))
    with pytest.raises(CheckpointError, match="not a StyleGAN2 generator"):
        convert_nvidia_pickle(path)
    assert not marker.exists()
    (tmp_path / "other.pkl").write_bytes(pickle.dumps({"weights": [1, 2]}))
    with pytest.raises(CheckpointError, match="G_ema"):
        convert_nvidia_pickle(tmp_path / "other.pkl")


# ---------------------------------------------------------------- training

def tiny_trainer(seed=0):
    cfg = gantrain.TrainConfig(resolution=16, z_dim=16, w_dim=16, channel_base=128,
                               channel_max=16, batch_size=4, r1_every=2, seed=seed)
    images = torch.rand(8, 1, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    return gantrain.GANTrainer(cfg, images)


def test_augment_shapes_and_gradients():
    x = torch.randn(4, 1, 16, 16, requires_grad=True)
    y = gantrain.augment(x, 0.125, torch.Generator().manual_seed(0))
    assert y.shape == x.shape
    y.sum().backward()
    assert x.grad.abs().sum() > 0
    same = gantrain.augment(x, 0.0, torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) or torch.equal(a, b.flip(-1)) for a, b in zip(same, x))


def test_train_step_changes_weights_and_resumes(tmp_path):
    trainer = tiny_trainer()
    before = [p.clone() for p in trainer.net_G.parameters()]
    record = trainer.train_step()
    assert all(torch.isfinite(torch.tensor(record[k])) for k in ("loss_D", "loss_G", "r1"))
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.net_G.parameters()))
    path = trainer.save(tmp_path / "checkpoint.pt")
    trainer.train_step()
    resumed = tiny_trainer().load(path)
    resumed.train_step()
    for a, b in zip(trainer.net_G.parameters(), resumed.net_G.parameters()):
        torch.testing.assert_close(a, b)
    net_G = load_stylegan(path)  # the EMA generator of a training checkpoint
    assert net_G.resolution == 16
    other = gantrain.GANTrainer(gantrain.TrainConfig(resolution=16, z_dim=16, w_dim=16,
                                                     channel_base=128, channel_max=16,
                                                     batch_size=2), torch.zeros(2, 1, 16, 16))
    with pytest.raises(ValueError, match="different config"):
        other.load(path)


def test_parse_stop_at():
    import datetime as dt

    now = dt.datetime(2026, 1, 1, 4, 0, tzinfo=dt.timezone.utc)
    assert gantrain.parse_stop_at("03:30", now) == dt.datetime(2026, 1, 2, 3, 30,
                                                                tzinfo=dt.timezone.utc).timestamp()
    assert gantrain.parse_stop_at("05:00", now) == now.timestamp() + 3600
    assert gantrain.parse_stop_at(None) is None


def test_command_line_trains_and_resumes(tmp_path, capsys):
    from PIL import Image

    data = tmp_path / "faces"
    data.mkdir()
    rng = torch.Generator().manual_seed(0)
    for subject in (1, 2, 40):  # subject 40 is held out by default
        for k in (1, 2):
            pixels = (torch.rand(28, 23, generator=rng) * 255).to(torch.uint8).numpy()
            Image.fromarray(pixels, mode="L").save(data / f"s{subject}_{k}.pgm")
    out = tmp_path / "run"
    args = ["--out", str(out), "--data", str(data), "--resolution", "16", "--batch-size", "2",
            "--every", "1000"]
    gantrain_cli.main(args + ["--steps", "2"])
    assert "4 training faces" in capsys.readouterr().out
    assert {"checkpoint.pt", "samples_latest.png", "losses.png"} <= {p.name for p in out.iterdir()}
    gantrain_cli.main(args + ["--steps", "3"])
    assert "resumed at step 2" in capsys.readouterr().out
    assert load_stylegan(out / "checkpoint.pt").resolution == 16
