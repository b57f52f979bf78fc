"""Every notebook at the ``paper`` profile, as ``make paper`` runs it, shrunk to fit a CPU.

The real paper runs need a GPU and the internet (Imagenette, NVIDIA's FFHQ weights). Here the
downloads are replaced by local files in the same formats (tests/fakes.py) and papermill overrides
cut the sizes that only a GPU affords (epochs, photos, inversion steps); everything else is the
``paper`` branch of each notebook: Imagenette's layout and split at 256x256, batch 4, the paper's
widths, chapter 03's runs evaluated by chapters 04 and 06, an RGB 256 px generator from the weights
registry inverted on grayscale photos.

About seven minutes on two cores, most of it chapter 03's two steps of the paper's generator at
256x256. Part of ``make test``; ``make paper-smoke`` runs it alone.
"""

from __future__ import annotations

import os
from pathlib import Path
from unittest import mock

import pytest
import torch

from repair.registry import REGISTRY
from repair.stylegan import StyleGAN2Generator

from fakes import fake_imagenette, write_nvidia_pickle
from test_notebooks import run_with_papermill, unquote

pytestmark = pytest.mark.paper


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory):
    """A working folder shared by the chapters, in order: Imagenette, the weights cache, runs."""
    work = tmp_path_factory.mktemp("paper")
    fake_imagenette(work / "data", {"train": 4, "val": 2}, shape=(300, 360, 3))
    net_G = StyleGAN2Generator(256, 3, z_dim=64, w_dim=64, mapping_layers=2, channel_base=1024,
                               channel_max=64)
    with torch.no_grad():
        net_G.mapping.w_avg.normal_()
    write_nvidia_pickle(net_G, work / "cache" / REGISTRY["ffhq-res256"].filename)
    (work / "notebooks").mkdir()
    return work


def run(name: str, work: Path, **parameters) -> dict:
    """Execute notebooks/<name>.ipynb at PROFILE=paper in the shared folder; its glued values."""
    env = {"REPAIR_IMAGENETTE": str(work / "data"), "REPAIR_CACHE": str(work / "cache")}
    with mock.patch.dict(os.environ, env):   # the kernel inherits them
        return run_with_papermill(name, work / "notebooks", profile="paper", cwd=work / "notebooks",
                                  **parameters)


def number(value: str) -> float:
    return float(unquote(value))


def test_01_damage_on_imagenette(paper_run):
    values = run("01_dataset_damage", paper_run)
    assert 5 < number(values["psnr_damaged"]) < 40


def test_02_networks_at_the_paper_size(paper_run):
    values = run("02_dcgan_architecture", paper_run)
    assert number(values["paper_gflop"]) == pytest.approx(146, abs=1)   # GFLOP at 256x256


def test_03_trains_both_recipes_at_256(paper_run):
    values = run("03_training_loop", paper_run, num_epochs=1, RESTORER_STEPS=2)
    runs = paper_run / "notebooks" / "runs" / "03"
    for recipe in ("paper", "pix2pix"):
        assert (runs / recipe / "G_best.pt").is_file(), f"no checkpoint for {recipe}"
        assert 0 < number(values[f"psnr_{recipe}"]) < 60


def test_04_evaluates_the_runs_of_chapter_03(paper_run):
    values = run("04_evaluation", paper_run, LIMIT=2)
    assert unquote(values["ours"]) == "pix2pix" and unquote(values["paper"]) == "paper"
    assert number(values["n_photos"]) == 2 and 0 < number(values["psnr_ours"]) < 60


def test_05_inverts_grayscale_with_an_rgb_ffhq_generator(paper_run):
    values = run("05_stylegan_inversion", paper_run, STEPS=[2, 2, 2], N_KNOWN=1)
    assert unquote(values["steps"]) == "2+2+2"
    assert 0 < number(values["known_wpp"]) < 80 and number(values["sec_per_image"]) > 0


def test_06_studies_the_plates_with_the_runs_of_chapter_03(paper_run):
    values = run("06_daguerreotype_study", paper_run)
    assert unquote(values["lines_pix2pix"]) != "-" and unquote(values["lines_paper"]) != "-"
    assert number(values["n_photos"]) >= 1
