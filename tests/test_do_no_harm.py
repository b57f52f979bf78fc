"""Do no harm: the committed restorer of record on a few small photos (seconds on a CPU).

A clean photo must come back nearly unchanged, and a photo with one damage must not come back
worse than it went in. Measured on scikit-image's bundled photos (never trained on), 128x128.
"""

from __future__ import annotations

import pytest
import torch

from repair import metrics, zoo
from repair.damage import PAPER_MIX, damage
from repair.data import skimage_photos
from repair.evaluate import center_square
from repair.restore import DEFAULT_MODEL

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def net_R():
    if DEFAULT_MODEL not in zoo.available_models():
        pytest.fail(f"{DEFAULT_MODEL} is not in checkpoints/: the shipped weights are missing")
    return zoo.load_models([DEFAULT_MODEL])[DEFAULT_MODEL].eval()


@pytest.fixture(scope="module")
def x_clean() -> torch.Tensor:
    names = ["camera", "astronaut", "coffee", "chelsea", "rocket", "brick"]
    return torch.stack([center_square(x, 128) for x in skimage_photos(names)])


def restore(net_R, x):
    with torch.no_grad():
        return net_R(x)


def test_the_default_restorer_is_the_restorer_of_record(net_R):
    assert net_R.arch == "nafnet" and net_R.hparams["mask_width"] > 0


def test_clean_photos_come_back_nearly_unchanged(net_R, x_clean):
    scores = metrics.psnr(restore(net_R, x_clean), x_clean)
    assert scores.mean() >= 40, f"clean photos returned at {scores.tolist()} dB against themselves"


@pytest.mark.parametrize("name", list(PAPER_MIX))
def test_one_damage_is_not_made_worse(net_R, x_clean, name):
    alone = {other: (PAPER_MIX[other] if other == name else 0.0) for other in PAPER_MIX}
    x_damaged, _ = damage(x_clean, seed=0, **alone)
    before = metrics.psnr(x_damaged, x_clean)
    after = metrics.psnr(restore(net_R, x_damaged), x_clean)
    assert after.mean() >= before.mean(), f"{name}: {before.tolist()} -> {after.tolist()} dB"
    assert (after < before - 0.5).sum() <= 1, f"{name}: {before.tolist()} -> {after.tolist()} dB"
