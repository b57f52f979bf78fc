"""The classical restorers of repair.classical: contract, effect on known damage, bad input."""

import pytest
import torch
import torch.nn.functional as F
from skimage import data as skdata

from repair import classical, metrics
from repair.damage import damage


@pytest.fixture(scope="module")
def camera() -> torch.Tensor:
    """scikit-image's bundled camera photo as (1, 1, 96, 96) in [-1, 1]."""
    x = torch.from_numpy(skdata.camera()).float()[None, None] / 127.5 - 1
    return F.interpolate(x, size=(96, 96), mode="area")


def smooth(size: int = 48) -> torch.Tensor:
    """A smooth diagonal ramp (1, 1, size, size) in [-0.5, 0.5]."""
    ramp = torch.linspace(-0.5, 0.5, size)
    return ((ramp[:, None] + ramp[None, :]) / 2)[None, None]


@pytest.mark.parametrize("name", list(classical.CLASSICAL))
def test_contract_shape_range_dtype_determinism(name):
    restore = classical.CLASSICAL[name]
    x = torch.rand(2, 1, 40, 48, generator=torch.Generator().manual_seed(0)) * 2 - 1
    mask = torch.zeros(x.shape, dtype=torch.bool)
    mask[:, :, 10, :] = True
    for m in (mask, None):
        y = restore(x, m)
        assert y.shape == x.shape and y.dtype == torch.float32 and y.device == x.device
        assert float(y.min()) >= -1 and float(y.max()) <= 1
        assert torch.equal(y, restore(x, m))
    single = restore(x[0], mask[0])  # (1, H, W) in, (1, H, W) out
    assert single.shape == x[0].shape
    assert torch.allclose(single, restore(x, mask)[0])


def test_inpainting_with_true_mask_repairs_cracks(camera):
    x_damaged, mask = damage(camera, seed=3, blur=0, splotches=0, cracks=1.0, contrast=0)
    assert mask.any()
    inpainted = classical.inpaint_sharpen(x_damaged, mask, amount=0, span=0)  # inpainting only
    assert metrics.psnr(inpainted, camera) > metrics.psnr(x_damaged, camera) + 3
    outside = ~mask
    assert torch.allclose(inpainted[outside], x_damaged[outside], atol=1e-5)  # only holes change


def test_inpaint_sharpen_improves_the_paper_mix(camera):
    x_damaged, mask = damage(camera, seed=0)
    x_restored = classical.inpaint_sharpen(x_damaged, mask)
    assert metrics.psnr(x_restored, camera) > metrics.psnr(x_damaged, camera) + 1
    assert metrics.ssim(x_restored, camera) > metrics.ssim(x_damaged, camera)
    # sharpening and stretching bring the blurred, faded photo's edges closer to the clean ones
    assert abs(1 - metrics.edge_ratio(x_restored, camera)) < abs(1 - metrics.edge_ratio(x_damaged, camera))


def test_median_clahe_removes_thin_cracks_and_restores_contrast():
    x_clean = smooth()
    x_damaged = x_clean.clone()
    x_damaged[..., 24, :] = 1.0  # a 1-pixel bright crack
    x_restored = classical.median_clahe(x_damaged)

    def crack_contrast(x):  # how far the crack row stands out from the rows beside it
        return float((x[..., 24, 4:-4] - (x[..., 22, 4:-4] + x[..., 26, 4:-4]) / 2).abs().mean())

    assert crack_contrast(x_damaged) > 0.5
    assert crack_contrast(x_restored) < 0.1
    faded = x_clean * 0.4
    assert float(classical.median_clahe(faded).std()) > float(faded.std())


def test_detect_damage_finds_a_crack():
    x = smooth(64)
    x[..., 30, 8:56] = 0.9  # bright crack
    x[..., 12:50, 40] = -0.9  # dark crack
    found = classical.detect_damage(x)
    assert found.shape == x.shape and found.dtype == torch.bool
    truth = torch.zeros_like(found)
    truth[..., 30, 8:56] = True
    truth[..., 12:50, 40] = True
    assert float(found[truth].float().mean()) > 0.8  # recall
    assert float(found[~truth].float().mean()) < 0.01  # false alarms on the smooth ramp
    repaired = classical.inpaint_sharpen(x, None, amount=0, span=0)  # mask detected
    assert metrics.psnr(repaired, smooth(64)) > metrics.psnr(x, smooth(64)) + 10


def test_bad_input_is_rejected():
    x = torch.zeros(1, 1, 32, 32)
    with pytest.raises(ValueError, match="grayscale"):
        classical.median_clahe(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match="mask shape"):
        classical.inpaint_sharpen(x, torch.zeros(1, 1, 16, 16, dtype=torch.bool))
    with pytest.raises(ValueError, match="odd"):
        classical.median_clahe(x, ksize=4)
    with pytest.raises(TypeError):
        classical.inpaint_sharpen(x.numpy())
