"""Decoys: content that looks like damage, painted into the clean target, never into the mask."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from repair.damage import damage
from repair.data import fit_size, random_rescale
from repair.decoys import DECOY_KINDS, decoy_layer, paint_decoys
from repair.synth import OFF, RestraintPairs, _augment, restraint_mix


@pytest.fixture
def photo() -> torch.Tensor:
    ramp = torch.linspace(-0.6, 0.6, 48)
    return (ramp[None, :, None] + 0.2 * ramp[None, None, :]).clamp(-1, 1)  # (1, 48, 48)


@pytest.mark.parametrize("kind", DECOY_KINDS)
def test_every_kind_paints_something_in_range(photo, kind):
    for seed in range(5):
        x = paint_decoys(photo, np.random.default_rng(seed), kind)
        assert x.shape == photo.shape and x.min() >= -1 and x.max() <= 1
        assert (x != photo).float().mean() > 0.005, f"{kind} seed {seed} painted nothing"
    before = photo.clone()
    paint_decoys(photo, np.random.default_rng(0), kind)
    assert torch.equal(photo, before)                         # a new photo; the input is kept


def test_lines_are_straight_and_thicker_than_a_crack():
    """A decoy line differs from a crack: straight (its pixels lie along one axis), and at least
    2 px across (cracks are 1-2 px random walks that turn at every step)."""
    seeds = [s for s in range(40) if np.random.default_rng(s).integers(1, 5) == 1][:5]
    assert seeds
    for seed in seeds:  # these seeds draw one line
        alpha, _ = decoy_layer(128, 128, np.random.default_rng(seed), "lines")
        ys, xs = np.nonzero(alpha > 0.5 * alpha.max())
        if len(ys) < 20:  # the line fell mostly outside the crop
            continue
        minor, major = np.sqrt(np.linalg.eigvalsh(np.cov(np.stack([ys, xs]).astype(float))))
        assert minor < 2.5 and minor < 0.1 * major, (seed, minor, major)
        assert len(ys) / (np.sqrt(12) * major) >= 1.5, seed  # pixels per unit length


def test_grid_repeats(photo):
    """A grid covers its crop with a periodic pattern: coverage in every quarter of the crop."""
    alpha, _ = decoy_layer(96, 96, np.random.default_rng(7), "grid")
    quarters = [alpha[r:r + 48, c:c + 48] for r in (0, 48) for c in (0, 48)]
    assert all((q > 0.1).mean() > 0.02 for q in quarters)


def test_unknown_kind_and_bad_shapes_are_refused(photo):
    with pytest.raises(ValueError, match="unknown decoy kind"):
        paint_decoys(photo, np.random.default_rng(0), "stars")
    with pytest.raises(ValueError, match="grayscale"):
        paint_decoys(torch.zeros(3, 8, 8), np.random.default_rng(0))


def test_decoys_are_in_the_target_and_never_in_the_mask(photo):
    """All damage off (clean pairs): the decoys are in input and target alike, the mask is empty."""
    plain = RestraintPairs([photo], seed=1, clean_share=1.0)
    decoyed = RestraintPairs([photo], seed=1, clean_share=1.0, decoy_share=1.0)
    x_plain = plain.batch(0, 4, 32)[0]
    x_clean, x_damaged, mask = decoyed.batch(0, 4, 32)
    assert torch.equal(x_clean, x_damaged) and not mask.any()
    assert not torch.equal(x_clean, x_plain)                 # same crops, decoys painted in


def test_decoyed_damage_masks_only_the_damage(photo):
    pairs = RestraintPairs([photo], seed=2, decoy_share=1.0, odds={**OFF, "cracks": 1.0},
                           clean_share=0.0)
    x_clean, x_damaged, mask = pairs.batch(0, 3, 48)
    assert mask.any()
    assert torch.equal(x_clean[~mask], x_damaged[~mask])     # outside the mask: the decoyed photo


def test_decoy_share_zero_replays_earlier_runs(photo):
    """decoy_share 0 takes exactly the draws of the earlier pipeline: a sample built by hand
    from its steps (photo, rescale, crop, flip and turn, mix, damage) is the same."""
    pairs = RestraintPairs([photo, photo.flip(-1)], seed=4, single_share=0.3)
    x_clean, x_damaged, mask = pairs.batch(5, 3, 32)
    rng = np.random.default_rng([4, 5])
    for i in range(3):
        source = pairs.photos[int(rng.integers(2))]
        crop = _augment(fit_size(random_rescale(source, 32, pairs.scale, rng), 32, rng), rng)
        mix = restraint_mix(rng, single_share=0.3)
        damaged, true_mask = damage(crop, seed=[[4, 5, i]], **mix)
        assert torch.equal(crop, x_clean[i]) and torch.equal(damaged, x_damaged[i])
        assert torch.equal(true_mask, mask[i])
    with pytest.raises(ValueError, match="decoy_share"):
        RestraintPairs([photo], decoy_share=1.5)
