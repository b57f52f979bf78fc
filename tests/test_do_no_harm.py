"""Do no harm: the committed restorer of record on a few small photos (seconds on a CPU).

A clean photo must come back nearly unchanged, and a photo with one damage must not come back
worse than it went in. Measured on scikit-image's bundled photos (never trained on) at 256x256,
the size of chapter 04. Where the committed weights do not reach the target yet, the target is
kept as a strict expected failure (it turns into a failure the day it passes, so the marker gets
removed) next to a floor that guards against regressions.
"""

from __future__ import annotations

import pytest
import torch

from repair import metrics, zoo
from repair.damage import PAPER_MIX, damage
from repair.data import skimage_photos
from repair.images import center_square
from repair.restore import DEFAULT_MODEL

pytestmark = pytest.mark.usefixtures("one_thread")
NOT_YET = ("issue 13: the committed restorer still makes brick worse: its head flags the "
           "wall's bright mortar as cracks, and its restoring branch darkens the bricks and "
           "brightens the joints even when handed an empty mask (cycle 5: 20.5 dB clean, 21.3 "
           "with net_G(x, mask=0), 17% of it flagged; with blur alone brick loses 10.7 dB while "
           "the other five photos move by under 0.5 dB; with the fitted sharpening branch the other "
           "five gain 0.2-2.3 dB and brick loses 12.4); benchmarks/quality.py has the figures on "
           "chapter 04's photos")


@pytest.fixture(scope="module")
def net_R():
    if DEFAULT_MODEL not in zoo.available_models():
        pytest.fail(f"{DEFAULT_MODEL} is not in checkpoints/: the shipped weights are missing")
    return zoo.load_models([DEFAULT_MODEL])[DEFAULT_MODEL].eval()


@pytest.fixture(scope="module")
def x_clean() -> torch.Tensor:
    names = ["camera", "astronaut", "coffee", "chelsea", "rocket", "brick"]
    return torch.stack([center_square(x, 256) for x in skimage_photos(names)])


def restore(net_R, x):
    with torch.no_grad():
        return net_R(x)


def one_damage(x_clean, name):
    alone = {other: (PAPER_MIX[other] if other == name else 0.0) for other in PAPER_MIX}
    return damage(x_clean, seed=0, **alone)[0]


def test_the_default_restorer_is_the_restorer_of_record(net_R):
    assert net_R.arch == "nafnet" and net_R.hparams["mask_width"] > 0


@pytest.mark.xfail(strict=True, reason=NOT_YET)
def test_clean_photos_come_back_nearly_unchanged(net_R, x_clean):
    scores = metrics.psnr(restore(net_R, x_clean), x_clean)
    assert scores.mean() >= 40, f"clean photos returned at {scores.tolist()} dB against themselves"


def test_clean_photos_floor(net_R, x_clean):
    """Not the target: the level the committed weights reach. Cycle 1 of restorer-book
    returned 5 of these 6 photos above 34 dB (mean 34.9); cycle 2 4 of 6 (camera 30.8 dB, mean
    35.0); cycle 3 4 of 6 (camera 28.9, mean 34.8): it erased the tripod's legs, bright straight
    lines, as cracks. Cycle 4, trained with decoys (straight lines, grids and hard-edged shapes
    that belong to the photo), 4 of 6 (camera 30.9, brick 19.4, the other four 41.8-56.4; mean
    38.9). Cycle 5 (whole 256x256 crops, more clean pairs, false alarms costing more) 4 of 6
    (camera 32.0, brick 20.5, the other four 39.6-49.3; mean 37.8); with its fitted sharpening
    branch camera 31.7, the rest unchanged (mean 37.8). Brick stays near 18-21 dB in
    every cycle: the head flags 17-28% of it, the mortar, and the restoring branch paints it over
    (checkpoints/MANIFEST.md has the cycles)."""
    scores = metrics.psnr(restore(net_R, x_clean), x_clean)
    assert (scores >= 34).sum() >= 4 and scores.mean() >= 37, scores.tolist()


@pytest.mark.parametrize("name", [
    pytest.param("blur", marks=pytest.mark.xfail(strict=True, reason=NOT_YET)),
    "splotches", "cracks", "contrast"])
def test_one_damage_is_not_made_worse(net_R, x_clean, name):
    x_damaged = one_damage(x_clean, name)
    before = metrics.psnr(x_damaged, x_clean)
    after = metrics.psnr(restore(net_R, x_damaged), x_clean)
    assert after.mean() >= before.mean(), f"{name}: {before.tolist()} -> {after.tolist()} dB"
    assert (after < before - 0.5).sum() <= 1, f"{name}: {before.tolist()} -> {after.tolist()} dB"


def test_the_damage_it_finds_is_where_the_damage_is(net_R, x_clean):
    from repair.masks import classical_finder, mask_quality, network_finder

    scores = mask_quality(x_clean[:5], {"classical": classical_finder,
                                        "head": network_finder(net_R)}, seed=0)
    assert scores["head"]["f1"] > scores["classical"]["f1"], scores
