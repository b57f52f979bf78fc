"""Shared fixtures: small photos made on the fly, and the book built once per session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    config.addinivalue_line("markers", "book: builds the Jupyter Book (slow: executes notebooks)")
    config.addinivalue_line("markers", "paper: notebooks at the paper profile on local stand-ins "
                            "(slow; alone: `make paper-smoke`)")


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: one torch thread is faster than two fighting over a shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def photo() -> torch.Tensor:
    """A 64x64 grayscale photo-like tensor in [-1, 1] (smooth gradients plus texture)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:64] / 63.0
    base = 0.6 * np.sin(6 * xx) * np.cos(4 * yy) + 0.2 * rng.standard_normal((64, 64))
    return torch.from_numpy(np.clip(base, -1, 1).astype(np.float32))[None]


def save_png(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode=mode).save(path) if mode else Image.fromarray(array).save(path)
    return path


@pytest.fixture
def photo_folder(tmp_path) -> Path:
    """A folder with five small 8-bit PNG photos, two of them in a sub-folder."""
    rng = np.random.default_rng(1)
    for i in range(5):
        sub = tmp_path / "photos" / ("sub" if i >= 3 else "")
        save_png(sub / f"p{i}.png", rng.integers(0, 256, (48 + 4 * i, 60), dtype=np.uint8))
    return tmp_path / "photos"


@pytest.fixture(scope="session")
def built_book(tmp_path_factory) -> Path:
    """Build the book at the tiny profile with warnings as errors; returns the html folder."""
    out = tmp_path_factory.mktemp("book")
    env = dict(os.environ, REPAIR_PROFILE="tiny")
    jb = Path(sys.executable).with_name("jupyter-book")
    result = subprocess.run([str(jb), "build", "-W", "-n", "--keep-going", "--path-output",
                             str(out), str(ROOT)], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"jupyter-book build failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return out / "_build" / "html"
