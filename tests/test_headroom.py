"""What is left to gain (repair.headroom): the four ways to restore and the oracle gain/offset."""

from __future__ import annotations

import pytest
import torch

from repair.damage import damage
from repair.headroom import WAYS, best_affine, headroom
from repair.nafnet import MaskedNAFRestorer

pytestmark = pytest.mark.usefixtures("one_thread")


def test_best_affine_undoes_a_gain_and_offset_exactly():
    torch.manual_seed(0)
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    y = torch.stack([0.4 * x[0] + 0.1, 1.5 * x[1] - 0.2])
    assert torch.allclose(best_affine(y, x), x, atol=1e-6)


def test_best_affine_never_scores_below_its_input():
    torch.manual_seed(1)
    x, y = torch.rand(3, 1, 8, 8), torch.rand(3, 1, 8, 8)
    error = lambda a: (a - x).square().flatten(1).mean(1)
    assert (error(best_affine(y, x)) <= error(y) + 1e-9).all()
    flat = best_affine(torch.zeros_like(x), x)  # a flat output: the clean photo's mean
    assert torch.allclose(flat, x.mean((2, 3), keepdim=True).expand_as(x))
    with pytest.raises(ValueError, match="one shape"):
        best_affine(y, x[:2])


def trained_looking(seed=0):
    torch.manual_seed(seed)
    net = MaskedNAFRestorer(width=8, enc_blocks=(1, 1), middle_blocks=1, dec_blocks=(1, 1),
                            mask_width=4).eval()
    for p in net.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    return net


def test_headroom_restores_four_ways_and_splits_the_error():
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    x_damaged, mask = damage(x, seed=[0, 1])
    rows = headroom(trained_looking(), x, x_damaged, mask)
    assert list(rows) == [*WAYS, "error in mask"]
    assert all(v.shape == (2,) for v in rows.values())
    assert (rows["best gain/offset"] >= rows["own mask"] - 1e-6).all()
    assert len({round(float(rows[w][0]), 6) for w in WAYS[:3]}) == 3  # the masks matter
    assert ((rows["error in mask"] > 0) & (rows["error in mask"] < 1)).all()


def test_an_identity_network_scores_the_damaged_input_every_way():
    from repair.metrics import psnr

    x = torch.rand(1, 1, 32, 32) * 2 - 1
    x_damaged, mask = damage(x, seed=3, blur=0.0, contrast=0.0)
    fresh = MaskedNAFRestorer(width=8, enc_blocks=(1,), dec_blocks=(1,), mask_width=4).eval()
    rows = headroom(fresh, x, x_damaged, mask)
    for way in WAYS[:3]:
        assert torch.allclose(rows[way], psnr(x_damaged, x))
    assert float(rows["error in mask"]) == pytest.approx(1.0)  # only splotches and cracks


def test_headroom_refuses_a_network_without_a_damage_branch():
    x = torch.zeros(1, 1, 16, 16)
    net = MaskedNAFRestorer(width=8, enc_blocks=(1,), dec_blocks=(1,), mask_width=0).eval()
    with pytest.raises(ValueError, match="no damage branch"):
        headroom(net, x, x, torch.zeros_like(x, dtype=torch.bool))
    with pytest.raises(ValueError, match="share one shape"):
        headroom(trained_looking(), x, x, torch.zeros(1, 1, 8, 8, dtype=torch.bool))
