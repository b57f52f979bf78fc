"""Tests for repair.tiling: tiled restoration equals a whole-image run, without seams."""

import pytest
import torch
from torch import nn

from repair.tiling import blend_window, restore_tiled, tile_starts


def conv_net(depth: int = 3, seed: int = 0) -> nn.Module:
    """A translation-equivariant net: ``depth`` fixed 3x3 reflect-padded convs (radius depth)."""
    layers = []
    with torch.random.fork_rng():  # fixed weights without touching the global generator
        torch.manual_seed(seed)
        for _ in range(depth):
            layers += [nn.Conv2d(1, 1, 3, padding=1, padding_mode="reflect"), nn.Tanh()]
    return nn.Sequential(*layers).eval()


class NeedsMultiple(nn.Module):
    """Wraps a net and refuses sizes that are not multiples of ``multiple`` (like a U-Net)."""

    def __init__(self, net: nn.Module, multiple: int):
        super().__init__()
        self.net, self.multiple = net, multiple

    def forward(self, x):
        h, w = x.shape[-2:]
        if h % self.multiple or w % self.multiple:
            raise RuntimeError(f"size {h}x{w} is not a multiple of {self.multiple}")
        return self.net(x)


class Recorder(nn.Module):
    """Records the shape of every batch it sees."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net, self.shapes = net, []

    def forward(self, x):
        self.shapes.append(tuple(x.shape))
        return self.net(x)


def image(h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 1, h, w, generator=g) * 2 - 1  # (1, 1, h, w) in [-1, 1]


def full_run(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return net(x)


def test_identity_net_returns_the_input():
    x = image(517, 301)
    y = restore_tiled(nn.Identity(), x, tile=128, overlap=32, progress=False)
    assert y.shape == x.shape and y.dtype == torch.float32
    assert torch.allclose(y, x, atol=1e-6)


def test_equivariant_net_matches_the_whole_image_run_at_odd_size():
    x, net = image(517, 301), conv_net(depth=3)
    y = restore_tiled(net, x, tile=96, overlap=32, batch_size=3, progress=False)
    assert y.shape == x.shape
    assert (y - full_run(net, x)).abs().max() < 1e-5


def test_no_seams_along_tile_borders():
    x, net = image(300, 260, seed=1), conv_net(depth=4)
    tile, overlap = 64, 16
    y = restore_tiled(net, x, tile=tile, overlap=overlap, progress=False)
    diff = (y - full_run(net, x)).abs()[0, 0]  # (300, 260)
    rows = {s + d for s in tile_starts(300, tile, overlap)[1:] for d in range(-2, overlap + 2)}
    cols = {s + d for s in tile_starts(260, tile, overlap)[1:] for d in range(-2, overlap + 2)}
    assert diff[sorted(r for r in rows if r < 300)].max() < 1e-5
    assert diff[:, sorted(c for c in cols if c < 260)].max() < 1e-5


def test_without_blending_margin_seams_appear():
    """The check above can fail: with no zero-weight margin the tile edges leak padding."""
    x, net = image(200, 200, seed=2), conv_net(depth=4)
    y = restore_tiled(net, x, tile=64, overlap=16, margin=0, progress=False)
    assert (y - full_run(net, x)).abs().max() > 1e-4


def test_tiny_image_needing_multiples_of_16():
    x = image(8, 8)  # mirror-padded to 16x16: one tile
    net = NeedsMultiple(conv_net(depth=1), 16)
    y = restore_tiled(net, x, tile=256, overlap=32, multiple=16, progress=False)
    assert y.shape == (1, 1, 8, 8)
    # one 3x3 reflect conv on a mirror-padded image equals the conv on the image itself
    assert (y - full_run(conv_net(depth=1), x)).abs().max() < 1e-6
    assert torch.allclose(restore_tiled(NeedsMultiple(nn.Identity(), 16), x, multiple=16,
                                        progress=False), x)


def test_odd_size_with_a_net_needing_multiples_of_16():
    x = image(517, 301)  # both sides larger than a tile: tiles fit inside, no padding
    net = NeedsMultiple(conv_net(depth=3), 16)
    y = restore_tiled(net, x, tile=128, overlap=32, multiple=16, progress=False)
    assert y.shape == x.shape
    assert (y - full_run(conv_net(depth=3), x)).abs().max() < 1e-5


def test_one_side_smaller_than_a_tile_is_mirror_padded():
    x = image(40, 333)
    net = NeedsMultiple(conv_net(depth=3), 16)
    y = restore_tiled(net, x, tile=64, overlap=16, multiple=16, progress=False)
    assert y.shape == x.shape
    x_pad = nn.functional.pad(x, (0, 0, 0, 8), mode="reflect")  # (1, 1, 48, 333)
    assert (y - full_run(conv_net(depth=3), x_pad)[..., :40, :]).abs().max() < 1e-5


def test_memory_is_bounded_by_the_tile_batch():
    x = image(300, 300)
    net = Recorder(nn.Identity())
    restore_tiled(net, x, tile=64, overlap=16, batch_size=4, progress=False)
    assert len(net.shapes) > 1
    assert all(s[0] <= 4 and s[-2:] == (64, 64) for s in net.shapes)
    n_tiles = len(tile_starts(300, 64, 16)) ** 2
    assert sum(s[0] for s in net.shapes) == n_tiles


def test_three_dim_input_and_channels_are_kept():
    x = image(70, 90)[0]  # (1, 70, 90)
    y = restore_tiled(nn.Identity(), x, tile=32, overlap=8, progress=False)
    assert y.shape == x.shape and torch.allclose(y, x, atol=1e-6)
    two = torch.cat([image(50, 50), image(50, 50, seed=3)])  # (2, 1, 50, 50)
    assert torch.allclose(restore_tiled(nn.Identity(), two, tile=32, overlap=8, progress=False),
                          two, atol=1e-6)


def test_blend_window_weights_complement_each_other():
    w = blend_window(64, True, True, overlap=16, margin=4)
    assert w[:4].eq(0).all() and w[16:48].eq(1).all() and w[-4:].eq(0).all()
    d = torch.arange(16)
    assert torch.allclose(w[d] + w[15 - d], torch.ones(16))  # the two tiles of an overlap sum to 1
    assert blend_window(64, False, False, 16, 4).eq(1).all()  # image borders keep full weight


def test_tile_starts_cover_the_length():
    starts = tile_starts(517, 128, 32)
    assert starts[0] == 0 and starts[-1] == 517 - 128
    assert all(b - a <= 128 - 32 for a, b in zip(starts, starts[1:]))
    assert tile_starts(100, 128, 32) == [0]


@pytest.mark.parametrize("kwargs, match", [
    ({"tile": 100, "multiple": 16}, "multiple"),
    ({"overlap": 256}, "overlap"),
    ({"overlap": 16, "margin": 8}, "margin"),
    ({"batch_size": 0}, "batch_size"),
])
def test_bad_arguments_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        restore_tiled(nn.Identity(), image(64, 64), progress=False, **kwargs)


def test_a_net_that_changes_the_size_is_rejected():
    with pytest.raises(ValueError, match="output has the input's size"):
        restore_tiled(nn.MaxPool2d(2), image(64, 64), tile=32, overlap=8, progress=False)


def test_bad_input_shape_is_rejected():
    with pytest.raises(ValueError, match="shape"):
        restore_tiled(nn.Identity(), torch.zeros(64, 64), progress=False)
