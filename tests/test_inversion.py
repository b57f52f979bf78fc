"""Robust inversion: normalised steps, the degradation f_hat, the pyramid loss, the three phases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from repair import damage
from repair.inversion import (Degradation, RobustLoss, differentiable_ssim, invert,
                              normalized_step)
from repair.metrics import lpips_available
from repair.stylegan import StyleGAN2Generator


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_G(resolution=16, channels=1) -> StyleGAN2Generator:
    torch.manual_seed(0)
    return StyleGAN2Generator(resolution, channels, z_dim=16, w_dim=16, mapping_layers=2,
                              channel_base=128, channel_max=16).eval()


def faces(n=2, side=32, seed=0) -> torch.Tensor:
    """Smooth test images in [-1, 1] (sums of random Gaussian blobs)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:side, :side] / side
    out = []
    for _ in range(n):
        img = sum(rng.uniform(-1, 1) * np.exp(-((xx - rng.uniform()) ** 2 +
                                               (yy - rng.uniform()) ** 2) / rng.uniform(0.01, 0.1))
                  for _ in range(6))
        out.append(np.clip(img, -1, 1))
    return torch.tensor(np.array(out), dtype=torch.float32)[:, None]


def test_normalized_step_moves_each_vector_by_lr():
    latent = torch.randn(2, 5, 3, 8)
    grad = torch.randn(2, 5, 3, 8) * torch.rand(2, 5, 3, 1) * 100
    grad[0, 1, 2] = 0.0  # a filter the layer does not have
    before = latent.clone()
    normalized_step(latent, grad, 0.02)
    moved = (latent - before).norm(dim=-1)
    expected = torch.full_like(moved, 0.02)
    expected[0, 1, 2] = 0.0
    torch.testing.assert_close(moved, expected)
    assert torch.isfinite(latent).all()
    cosine = torch.nn.functional.cosine_similarity(before - latent, grad, dim=-1)
    assert (cosine[moved > 0] > 0.999).all()


def test_degradation_matches_damage_blur_and_contrast():
    x = faces(3)
    torch.testing.assert_close(Degradation(blur=0.4)(x), damage.gaussian_blur(x, 0.4))
    torch.testing.assert_close(Degradation(contrast=0.5)(x), damage.lower_contrast(x, 0.5))
    both = Degradation(blur=0.4, contrast=0.5)(x)
    torch.testing.assert_close(both, damage.lower_contrast(damage.gaussian_blur(x, 0.4), 0.5))
    torch.testing.assert_close(Degradation()(x), x)


def test_degradation_is_differentiable():
    x = faces(2).requires_grad_(True)
    f_hat = Degradation(blur=0.5, contrast=0.5, downsample=2)
    y = f_hat(x)
    assert y.shape == (2, 1, 16, 16)
    y.square().sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_degradation_to_gray_and_downsample():
    rgb = torch.rand(2, 3, 8, 8) * 2 - 1
    y = Degradation(to_gray=True, downsample=4)(rgb)
    assert y.shape == (2, 1, 2, 2)
    gray = 0.299 * rgb[:, :1] + 0.587 * rgb[:, 1:2] + 0.114 * rgb[:, 2:]
    torch.testing.assert_close(y, torch.nn.functional.avg_pool2d(gray, 4))


def test_bad_degradations_rejected():
    with pytest.raises(ValueError, match="blur"):
        Degradation(blur=2.0)
    with pytest.raises(ValueError, match="downsample"):
        Degradation(downsample=1.5)


def test_mask_fill_hides_damaged_pixels():
    """f_hat(x_clean) and the damaged photo agree wherever the mask is False."""
    x_clean = faces(2)
    x_damaged, mask = damage.damage(x_clean, seed=3, blur=0, splotches=0.7, cracks=0.7, contrast=0)
    assert mask.any()
    loss = RobustLoss("ms-l1-ssim")
    f_hat = Degradation(mask=mask)
    generator = torch.Generator().manual_seed(0)
    masked = loss(f_hat(x_clean), x_damaged, f_hat.mask, generator)
    unmasked = loss(x_clean, x_damaged)
    assert masked.shape == (2,)
    assert masked.max() < 1e-5 < unmasked.min()


def test_robust_loss_pyramid():
    loss = RobustLoss("ms-l1-ssim")
    x = faces(2, side=64)
    torch.testing.assert_close(loss(x, x), torch.zeros(2), atol=1e-5, rtol=0)
    # a 16 px image has no perceptual level: only 0.1 x L1
    a, b = torch.zeros(1, 1, 16, 16), torch.full((1, 1, 16, 16), 0.5)
    torch.testing.assert_close(loss(a, b), torch.tensor([0.05]))
    # 64 px: perceptual terms at 64 and 32, L1 at 16
    expected = sum(loss.distance(torch.nn.functional.avg_pool2d(x, k)[:1],
                                 torch.nn.functional.avg_pool2d(-x, k)[:1]) for k in (1, 2))
    expected = expected + 0.1 * (torch.nn.functional.avg_pool2d(x, 4)[:1] * 2).abs().mean()
    torch.testing.assert_close(loss(x[:1], -x[:1]), expected)
    assert loss.name == ("lpips" if lpips_available("vgg") else "ms-l1-ssim")


def test_ssim_identity_and_range():
    x = faces(2)
    torch.testing.assert_close(differentiable_ssim(x, x), torch.ones(2))
    assert (differentiable_ssim(x, torch.flip(x, [-1])) < 0.99).all()
    with pytest.raises(ValueError, match="distance"):
        RobustLoss("l2")


def test_inversion_reduces_loss_on_known_latent():
    net_G = tiny_G(32)
    with torch.no_grad():
        w_true = net_G.mapping(torch.randn(1, 16, generator=torch.Generator().manual_seed(5)))
        x_true = net_G.synthesis(w_true)  # (1, 1, 32, 32)
    result = invert(net_G, x_true, phases=(25, 10, 5), loss="ms-l1-ssim", progress=False)
    assert [len(h) for h in result.losses] == [25, 10, 5]
    first, last = result.losses[0][0], result.losses[-1][-1]
    assert last < 0.7 * first
    assert result.latents[0].shape == (1, 16)
    assert result.latents[1].shape == (1, net_G.num_ws, 16)
    assert result.latents[2].shape == (1, net_G.num_ws, net_G.max_channels, 16)
    assert len(result.restorations) == 3 and result.restored.shape == (1, 1, 32, 32)
    with torch.no_grad():
        err_mean = (net_G.synthesis(net_G.mean_latent(2048)) - x_true).abs().mean()
    assert (result.restored - x_true).abs().mean() < err_mean
    assert all(p.grad is None and p.requires_grad for p in net_G.parameters())


def test_inversion_rgb_generator_gray_target_with_damage():
    net_G = tiny_G(16, channels=3)
    target = faces(2, side=8)  # a 16 px generator seen through x2 down-sampling
    mask = torch.zeros(2, 1, 8, 8, dtype=torch.bool)
    mask[:, :, 2:4, 2:6] = True
    f_hat = Degradation(blur=0.2, contrast=0.3, mask=mask, downsample=2)
    calls = []
    result = invert(net_G, target, f_hat, phases=(2, 2, 2), progress=False,
                    callback=lambda *args: calls.append(args))
    assert [c[:2] for c in calls] == [("W", 0), ("W", 1), ("W+", 0), ("W+", 1), ("W++", 0),
                                      ("W++", 1)]
    assert result.restored.shape == (2, 3, 16, 16)
    assert all(np.isfinite(h).all() for h in result.losses)
    assert f_hat.to_gray is False  # the caller's degradation is not changed


def test_inversion_rejects_bad_targets():
    net_G = tiny_G(16)
    with pytest.raises(ValueError, match="need \\(16, 16\\)"):
        invert(net_G, torch.zeros(1, 1, 12, 12), progress=False)
    with pytest.raises(ValueError, match="need \\(8, 8\\)"):
        invert(net_G, torch.zeros(1, 1, 16, 16), Degradation(downsample=2), progress=False)
    with pytest.raises(ValueError, match="channels"):
        invert(net_G, torch.zeros(1, 3, 16, 16), progress=False)
    with pytest.raises(ValueError, match="one mask per photo"):
        invert(net_G, torch.zeros(3, 1, 16, 16),
               Degradation(mask=torch.zeros(2, 1, 16, 16, dtype=torch.bool)), progress=False)
    with pytest.raises(ValueError, match="three values"):
        invert(net_G, torch.zeros(1, 1, 16, 16), phases=(1, 1), progress=False)
