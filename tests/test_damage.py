import numpy as np
import pytest
import torch

from repair import damage as D
from repair import layers

SINGLE = [D.gaussian_blur, D.splotches, D.cracks, D.lower_contrast]


@pytest.mark.parametrize("fn", SINGLE)
def test_strength_zero_is_identity(fn, photo):
    assert torch.equal(fn(photo, 0.0, np.random.default_rng(0)), photo)


@pytest.mark.parametrize("fn", SINGLE)
def test_single_damage_changes_image_and_keeps_shape(fn, photo):
    out = fn(photo, 0.8, np.random.default_rng(0))
    assert out.shape == photo.shape and out.dtype == photo.dtype
    assert (out - photo).abs().max() > 0.05


@pytest.mark.parametrize("fn", SINGLE)
def test_single_damage_is_deterministic_for_a_generator(fn, photo):
    a = fn(photo, 0.7, np.random.default_rng(5))
    b = fn(photo, 0.7, np.random.default_rng(5))
    assert torch.equal(a, b)


@pytest.mark.parametrize("fn", [D.splotches, D.cracks])
def test_random_damages_differ_between_seeds(fn, photo):
    a = fn(photo, 0.7, np.random.default_rng(1))
    b = fn(photo, 0.7, np.random.default_rng(2))
    assert not torch.equal(a, b)


def test_blur_grows_with_strength(photo):
    def roughness(x):
        return (x[..., 1:] - x[..., :-1]).abs().mean().item()
    values = [roughness(D.gaussian_blur(photo, s)) for s in (0.0, 0.3, 0.6, 1.0)]
    assert values == sorted(values, reverse=True)


def test_contrast_pulls_towards_the_mean(photo):
    out = D.lower_contrast(photo, 1.0)
    assert out.std().item() == pytest.approx(photo.std().item() * D.MIN_CONTRAST, rel=1e-4)
    assert out.mean() == pytest.approx(photo.mean().item(), abs=1e-5)


def test_damage_returns_image_and_mask_in_range(photo):
    x_damaged, mask = D.damage(photo, seed=3)
    assert x_damaged.shape == photo.shape and x_damaged.dtype == torch.float32
    assert mask.shape == photo.shape and mask.dtype == torch.bool
    assert x_damaged.min() >= -1 and x_damaged.max() <= 1
    assert 0 < mask.float().mean() < 1


def test_damage_is_deterministic_for_a_seed(photo):
    a, ma = D.damage(photo, seed=11)
    b, mb = D.damage(photo, seed=11)
    c, _ = D.damage(photo, seed=12)
    assert torch.equal(a, b) and torch.equal(ma, mb)
    assert not torch.equal(a, c)


def test_all_strengths_zero_is_identity(photo):
    out, mask = D.damage(photo, seed=0, blur=0, splotches=0, cracks=0, contrast=0)
    assert torch.equal(out, photo)
    assert not mask.any()


def test_mask_covers_exactly_the_painted_pixels(photo):
    out, mask = D.damage(photo, seed=4, blur=0, splotches=0.8, cracks=0.8, contrast=0)
    assert mask.any()
    assert torch.equal(out[~mask], photo[~mask])
    assert (out[mask] != photo[mask]).float().mean() > 0.9


def test_mask_ignores_blur_and_contrast(photo):
    _, mask = D.damage(photo, seed=0, blur=1, splotches=0, cracks=0, contrast=1)
    assert not mask.any()


def test_batch_matches_per_image_seeds(photo):
    batch = torch.stack([photo, photo.flip(-1), photo * 0.5])
    out, mask = D.damage(batch, seed=7)
    assert out.shape == (3, 1, 64, 64) and mask.shape == (3, 1, 64, 64)
    single, single_mask = D.damage(photo, seed=7)
    assert torch.equal(out[0], single) and torch.equal(mask[0], single_mask)
    assert not torch.equal(mask[0], mask[1])  # each image of a batch gets its own damage


def test_explicit_seeds_per_image(photo):
    batch = torch.stack([photo, photo])
    out, _ = D.damage(batch, seed=[[1, 2], [1, 2]])
    assert torch.equal(out[0], out[1])
    with pytest.raises(ValueError, match="one seed per image"):
        D.damage(batch, seed=[1, 2, 3])


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_strength_out_of_range_is_rejected(photo, bad):
    with pytest.raises(ValueError, match="between 0 and 1"):
        D.damage(photo, cracks=bad)


def test_wrong_shapes_and_types_are_rejected(photo):
    with pytest.raises(ValueError, match="grayscale"):
        D.damage(torch.zeros(3, 32, 32))
    with pytest.raises(ValueError, match="grayscale"):
        D.damage(torch.zeros(32, 32))
    with pytest.raises(TypeError, match="float tensor"):
        D.damage((photo * 100).to(torch.uint8))
    with pytest.raises(TypeError, match="float tensor"):
        D.damage(photo.numpy())


def test_layers_are_soft_and_bounded():
    rng = np.random.default_rng(0)
    alpha, tone = layers.splotch_layer(128, 128, 1.0, rng)
    assert alpha.shape == (128, 128) and 0 <= alpha.min() and alpha.max() <= 1
    assert ((alpha > 0) & (alpha < 0.5)).any(), "stains should have soft edges"
    crack_alpha, _ = layers.crack_layer(128, 128, 1.0, rng)
    assert 0 < (crack_alpha > 0).mean() < 0.3


def test_small_images_work():
    x = torch.zeros(1, 16, 16)
    out, mask = D.damage(x, seed=0, blur=1, splotches=1, cracks=1, contrast=1)
    assert out.shape == x.shape and torch.isfinite(out).all()


PLATE = [D.tarnish, D.haze, D.scratches, D.dust]


@pytest.mark.parametrize("fn", PLATE + [D.polishing_lines])
def test_plate_damage_strength_zero_is_identity(fn, photo):
    assert torch.equal(fn(photo, 0.0, np.random.default_rng(0)), photo)


@pytest.mark.parametrize("fn", PLATE)
def test_plate_damage_changes_image_deterministically(fn, photo):
    a = fn(photo, 0.8, np.random.default_rng(3))
    assert torch.equal(a, fn(photo, 0.8, np.random.default_rng(3)))
    assert a.shape == photo.shape and (a - photo).abs().max() > 0.05


def test_tarnish_creeps_in_from_the_edges():
    alpha, _ = layers.tarnish_layer(96, 96, 0.8, np.random.default_rng(0))
    border = np.concatenate([alpha[:4].ravel(), alpha[-4:].ravel(), alpha[:, :4].ravel(),
                             alpha[:, -4:].ravel()])
    assert border.mean() > 0.3 and alpha[40:56, 40:56].max() == 0


def test_polishing_lines_are_horizontal(photo):
    diff = (D.polishing_lines(photo, 1.0, np.random.default_rng(0)) - photo)[0].numpy()
    along_rows = np.abs(np.diff(diff, axis=1)).mean()
    across_rows = np.abs(np.diff(diff, axis=0)).mean()
    assert across_rows > 3 * along_rows


def test_plate_mask_covers_scratches_and_dust(photo):
    out, mask = D.damage(photo, seed=1, blur=0, splotches=0, cracks=0, contrast=0, scratches=1.0,
                         dust=1.0)
    assert mask.any() and torch.equal(out[~mask], photo[~mask])
    _, veil_mask = D.damage(photo, seed=1, blur=0, splotches=0, cracks=0, contrast=0, tarnish=1,
                            haze=1)
    assert not veil_mask.any()


def test_plate_damages_off_by_default_leave_paper_mix_unchanged(photo):
    a, _ = D.damage(photo, seed=9)
    b, _ = D.damage(photo, seed=9, tarnish=0, haze=0, scratches=0, dust=0)
    c, _ = D.damage(photo, seed=9, **D.DAGUERREOTYPE_MIX)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_random_mix_switches_damages_off_and_scales_the_rest():
    from repair.damage import PAPER_MIX, random_mix

    rng = np.random.default_rng(0)
    draws = [random_mix(PAPER_MIX, rng) for _ in range(400)]
    for name, strength in PAPER_MIX.items():
        values = np.array([d[name] for d in draws])
        off = values == 0
        assert 0.15 < off.mean() < 0.35                              # p_off = 1/4
        kept = values[~off]
        assert kept.min() >= 0.5 * strength - 1e-9 and kept.max() <= min(1, 1.5 * strength) + 1e-9
    assert random_mix({"blur": 0.0, "cracks": 0.5}, rng, p_off=0)["blur"] == 0.0  # off stays off
    assert random_mix(PAPER_MIX, np.random.default_rng(3)) == random_mix(PAPER_MIX,
                                                                         np.random.default_rng(3))
    with pytest.raises(ValueError, match="p_off"):
        random_mix(PAPER_MIX, rng, p_off=1.5)
    with pytest.raises(ValueError, match="spread"):
        random_mix(PAPER_MIX, rng, spread=(1.0, 0.5))
