"""PSNR, SSIM, the edge ratio and the LPIPS skip path of repair.metrics."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from repair import metrics


def photo(size: int = 64, seed: int = 0) -> torch.Tensor:
    """A textured test image (1, size, size) in [-1, 1]: smooth shapes plus fine detail."""
    gen = torch.Generator().manual_seed(seed)
    coarse = F.interpolate(torch.rand(1, 1, 8, 8, generator=gen), size=(size, size),
                           mode="bilinear", align_corners=False)
    fine = torch.rand(1, 1, size, size, generator=gen)
    return (0.7 * coarse + 0.3 * fine)[0] * 1.6 - 0.8  # (1, size, size)


def blur(x: torch.Tensor) -> torch.Tensor:
    kernel = torch.ones(1, 1, 5, 5) / 25
    return F.conv2d(F.pad(x[None], (2, 2, 2, 2), mode="replicate"), kernel)[0]


def test_identical_images_score_perfectly():
    x = photo()
    assert metrics.psnr(x, x) == metrics.PSNR_MAX
    assert metrics.ssim(x, x) == pytest.approx(1.0, abs=1e-9)
    assert metrics.edge_ratio(x, x) == pytest.approx(1.0, abs=1e-9)


def test_psnr_matches_hand_computation():
    x_clean = -torch.ones(1, 16, 16)  # 0 on the [0, 1] scale
    x_restored = torch.full((1, 16, 16), -0.8)  # 0.1 on the [0, 1] scale: MSE 0.01
    assert metrics.psnr(x_restored, x_clean) == pytest.approx(20.0, abs=1e-6)
    a, b = photo(seed=1), photo(seed=2)
    mse = float((((a + 1) / 2 - (b + 1) / 2) ** 2).double().mean())
    assert metrics.psnr(a, b) == pytest.approx(10 * math.log10(1 / mse), abs=1e-4)


def test_batch_gives_one_score_per_image():
    batch = torch.stack([photo(seed=s) for s in range(3)])  # (3, 1, 64, 64)
    noisy = (batch + 0.1 * torch.randn(batch.shape, generator=torch.Generator().manual_seed(0)))
    for fn in (metrics.psnr, metrics.ssim, metrics.edge_ratio):
        scores = fn(noisy, batch)
        assert isinstance(scores, torch.Tensor) and scores.shape == (3,)
        assert float(scores[1]) == pytest.approx(fn(noisy[1], batch[1]))
    assert isinstance(metrics.psnr(noisy[0], batch[0]), float)


def test_blur_lowers_edge_and_noise_raises_it():
    x = photo()
    noisy = (x + 0.15 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(-1, 1)
    assert metrics.edge_ratio(blur(x), x) < 0.8
    assert metrics.edge_ratio(noisy, x) > 1.2


def test_worse_damage_scores_lower():
    x = photo()
    gen = torch.Generator().manual_seed(1)
    small = (x + 0.05 * torch.randn(x.shape, generator=gen)).clamp(-1, 1)
    large = (x + 0.3 * torch.randn(x.shape, generator=gen)).clamp(-1, 1)
    assert metrics.psnr(large, x) < metrics.psnr(small, x) < metrics.PSNR_MAX
    assert metrics.ssim(large, x) < metrics.ssim(small, x) < 1.0


def test_image_scores_dicts():
    batch = torch.stack([photo(seed=s) for s in range(2)])
    rows = metrics.image_scores(blur(batch[0])[None].expand(2, -1, -1, -1), batch)
    assert len(rows) == 2 and set(rows[0]) == {"psnr", "ssim", "edge"}
    assert all(isinstance(v, float) and np.isfinite(v) for row in rows for v in row.values())


@pytest.mark.parametrize("a_shape,b_shape", [((1, 32, 32), (1, 32, 16)),
                                             ((2, 3, 32, 32), (2, 3, 32, 32)),
                                             ((32, 32), (32, 32))])
def test_bad_shapes_are_rejected(a_shape, b_shape):
    with pytest.raises(ValueError, match="shape|grayscale"):
        metrics.psnr(torch.zeros(a_shape), torch.zeros(b_shape))


def test_nan_and_tiny_images_are_rejected():
    with pytest.raises(ValueError, match="NaN"):
        metrics.psnr(torch.full((1, 16, 16), float("nan")), torch.zeros(1, 16, 16))
    with pytest.raises(ValueError, match="11x11"):
        metrics.ssim(torch.zeros(1, 8, 8), torch.zeros(1, 8, 8))


def test_lpips_is_skipped_clearly_without_weights(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))  # an empty weight cache
    reason = metrics.lpips_status()
    assert reason is not None and reason.startswith("skipped: LPIPS weights not available offline")
    assert not metrics.lpips_available()
    with pytest.raises(metrics.LPIPSUnavailable, match="^skipped: LPIPS weights"):
        metrics.lpips(photo(), photo())
    with pytest.raises(ValueError, match="backbone"):
        metrics.lpips_status("resnet")


def test_masked_psnr_scores_only_the_masked_pixels():
    from repair.metrics import masked_psnr

    clean = torch.zeros(2, 1, 8, 8)
    restored = clean.clone()
    restored[:, :, :4] = 1.0                          # top half wrong by 1 (0.5 on [0, 1])
    top = torch.zeros(2, 1, 8, 8, dtype=torch.bool)
    top[:, :, :4] = True
    assert torch.allclose(masked_psnr(restored, clean, top), torch.full((2,), 10 * math.log10(4)))
    assert (masked_psnr(restored, clean, ~top) > 90).all()          # exact there: floored error
    whole = masked_psnr(restored, clean, torch.ones_like(top))
    assert torch.allclose(whole.double(), torch.as_tensor(metrics.psnr(restored, clean)), atol=1e-3)
