"""Tests for repair.noref: no-reference measures move the right way and reject bad input."""

import math

import numpy as np
import pytest
import torch

from repair import noref
from repair.damage import gaussian_blur, lower_contrast


@pytest.fixture(scope="module")
def x_clean() -> torch.Tensor:
    """A 96x96 photo-like image with edges and smooth shading, in [-1, 1]."""
    from repair.data import fit_size, skimage_photos

    return fit_size(skimage_photos(["camera"])[0], 96, mode="resize")  # (1, 96, 96)


def _noisy(x: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (x + sigma * torch.randn(x.shape, generator=g)).clamp(-1, 1)


def test_measure_keys_and_finite(x_clean):
    values = noref.measure(x_clean)
    assert tuple(values) == noref.MEASURES
    assert all(isinstance(v, float) and math.isfinite(v) and v >= 0 for v in values.values())


def test_batch_of_one_and_plain_array_agree(x_clean):
    assert noref.measure(x_clean[None]) == pytest.approx(noref.measure(x_clean))
    assert noref.measure(x_clean[0].numpy()) == pytest.approx(noref.measure(x_clean))


def test_blur_lowers_sharpness(x_clean):
    blurred = gaussian_blur(x_clean, 0.5)
    assert noref.sharpness(blurred) < 0.5 * noref.sharpness(x_clean)
    assert noref.gradient(blurred) < noref.gradient(x_clean)


def test_noise_raises_noise_estimate(x_clean):
    assert noref.noise(_noisy(x_clean, 0.1)) > 3 * noref.noise(x_clean)
    assert noref.sharpness(_noisy(x_clean, 0.1)) > noref.sharpness(x_clean)


def test_noise_estimate_is_calibrated_on_a_flat_image():
    flat = torch.zeros(1, 128, 128)
    for sigma in (0.04, 0.2):  # standard deviation on the [-1, 1] scale = 2x on [0, 1]
        assert noref.noise(_noisy(flat, sigma, seed=3)) == pytest.approx(sigma / 2, rel=0.1)
    assert noref.noise(flat) == 0.0


def test_lower_contrast_lowers_rms_contrast(x_clean):
    faded = lower_contrast(x_clean, 0.8)
    assert noref.contrast(faded) < 0.6 * noref.contrast(x_clean)
    assert noref.contrast(x_clean) == pytest.approx(float(((x_clean + 1) / 2).std(unbiased=False)),
                                                    rel=1e-5)


def test_constant_image_measures_zero():
    values = noref.measure(torch.full((1, 32, 32), 0.3))
    assert values == pytest.approx({name: 0.0 for name in noref.MEASURES}, abs=1e-12)


@pytest.mark.parametrize("bad, message", [
    (torch.zeros(2, 1, 32, 32), "one grayscale image"),
    (torch.zeros(3, 32, 32), "one grayscale image"),
    (torch.zeros(1, 4, 32), "too small"),
    (torch.full((1, 32, 32), float("nan")), "NaN"),
])
def test_bad_input_rejected(bad, message):
    with pytest.raises(ValueError, match=message):
        noref.measure(bad)


def test_values_out_of_range_are_clipped():
    x = torch.from_numpy(np.linspace(-3, 3, 32 * 32, dtype=np.float32).reshape(1, 32, 32))
    assert noref.contrast(x) <= 0.5


def test_highpass_energy_sees_added_grain_only_where_asked():
    from repair.noref import highpass_energy

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:64] / 63.0
    smooth = torch.from_numpy((0.5 * np.sin(3 * xx + 2 * yy)).astype(np.float32))[None]
    grainy = smooth.clone()
    grainy[:, :, 32:] += torch.from_numpy(rng.normal(0, 0.1, (1, 64, 32)).astype(np.float32))
    left = torch.zeros(64, 64, dtype=torch.bool)
    left[:, :24] = True   # away from the grain: the blur reaches a few pixels
    assert highpass_energy(grainy) > 10 * highpass_energy(smooth)
    assert highpass_energy(grainy, left) == pytest.approx(highpass_energy(smooth, left))
    with pytest.raises(ValueError, match="no pixel"):
        highpass_energy(smooth, torch.zeros(64, 64, dtype=torch.bool))
