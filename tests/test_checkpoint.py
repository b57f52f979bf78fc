"""repair.checkpoint: atomic saves, exact resume, architecture checks, clear errors, registry."""

from __future__ import annotations

import io
import os

import pytest
import torch

from repair.checkpoint import (ArchitectureMismatchError, load_generator, read_checkpoint,
                               save_checkpoint)
from repair.checkpoint_check import CheckpointError
from repair.data import PairedDataset
from repair.callbacks import load_state, save_state, state_payload
from repair.train import fit, new_state
from tests.test_train import SIZE, one_thread, photos  # noqa: F401 (autouse fixture)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def data():
    return (PairedDataset(photos(6), SIZE, train=True, seed=0),
            PairedDataset(photos(1), SIZE, train=False, seed=0))


def run(recipe: str, **kwargs):
    state = new_state(recipe, ngf=4, ndf=8, image_size=SIZE, seed=0)
    train_ds, val_ds = data()
    return fit(state, train_ds, val_ds, num_epochs=2, batch_size=2, progress=False, **kwargs)


def tensors(state) -> dict[str, torch.Tensor]:
    out = {f"G.{k}": v for k, v in state.net_G.state_dict().items()}
    if state.net_D is not None:
        out.update({f"D.{k}": v for k, v in state.net_D.state_dict().items()})
    for name, opt in (("opt_G", state.opt_G), ("opt_D", state.opt_D)):
        if opt is not None:
            for i, s in opt.state_dict()["state"].items():
                out.update({f"{name}.{i}.{k}": v for k, v in s.items()})
    return out


@pytest.mark.parametrize("recipe,k", [("paper", 4), ("pix2pix", 2)])
def test_resume_is_exact(tmp_path, recipe, k):
    """N steps in one go == k steps, save, load into new objects, the rest (bitwise)."""
    whole = run(recipe)                                       # 2 epochs x 3 steps = 6 steps
    first = run(recipe, max_steps=k)                          # stops mid-epoch
    assert 0 < first.step_in_epoch < 3
    save_state(first, tmp_path / "last.pt")
    torch.manual_seed(1234)                                   # disturb the global RNG
    resumed = load_state(tmp_path / "last.pt")                # new networks and optimisers
    assert resumed is not first and resumed.global_step == k
    train_ds, val_ds = data()
    fit(resumed, train_ds, val_ds, num_epochs=2, batch_size=2, progress=False)
    a, b = tensors(whole), tensors(resumed)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert whole.history == resumed.history and whole.best == resumed.best
    assert torch.equal(torch.get_rng_state(), torch.get_rng_state())


def test_rng_states_are_restored(tmp_path):
    import random

    import numpy as np

    state = new_state("l1", ngf=4, ndf=4, image_size=SIZE)
    torch.manual_seed(7), np.random.seed(7), random.seed(7)
    save_state(state, tmp_path / "c.pt")
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(0), np.random.seed(0), random.seed(0)
    load_state(tmp_path / "c.pt")
    assert torch.equal(torch.rand(3), expected[0])
    assert (np.random.rand(3) == expected[1]).all() and random.random() == expected[2]


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    state = new_state("l1", ngf=4, ndf=4, image_size=SIZE)
    save_state(state, path)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    state.epoch = 5
    with pytest.raises(OSError, match="disk full"):
        save_state(state, path)
    assert path.read_bytes() == before                         # the old checkpoint survives
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left
    monkeypatch.undo()
    assert read_checkpoint(path)["epoch"] == 0


def test_another_models_checkpoint_gives_a_clear_error(tmp_path):
    save_state(new_state("pix2pix", ngf=4, ndf=4, image_size=SIZE), tmp_path / "unet.pt")
    paper = new_state("paper", ngf=4, ndf=4, image_size=SIZE)
    with pytest.raises(ArchitectureMismatchError, match="unet.*paper-generator"):
        load_state(tmp_path / "unet.pt", paper)
    wider = new_state("pix2pix", ngf=8, ndf=4, image_size=SIZE)
    with pytest.raises(ArchitectureMismatchError, match="ngf=4.*ngf=8"):
        load_state(tmp_path / "unet.pt", wider)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_damaged_file_gives_a_clear_error(tmp_path, damage):
    path = tmp_path / "last.pt"
    save_state(new_state("l1", ngf=4, ndf=4, image_size=SIZE), path)
    data_bytes = path.read_bytes()
    path.write_bytes({"truncated": data_bytes[: len(data_bytes) // 2], "garbage": b"\x00junk" * 99,
                      "empty": b""}[damage])
    with pytest.raises(CheckpointError, match="damaged or incomplete"):
        read_checkpoint(path)


def test_foreign_files_and_missing_files(tmp_path):
    torch.save({"weight": torch.zeros(2)}, tmp_path / "plain.pt")   # a bare state_dict
    with pytest.raises(CheckpointError, match="not a checkpoint of repair.train"):
        read_checkpoint(tmp_path / "plain.pt")
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        read_checkpoint(tmp_path / "missing.pt")


class Evil:
    def __reduce__(self):
        return (print, ("this code must not run",))


def test_loading_runs_no_pickled_code(tmp_path):
    buffer = io.BytesIO()
    torch.save({"format": "repair.train", "version": 1, "x": Evil()}, buffer)
    (tmp_path / "evil.pt").write_bytes(buffer.getvalue())
    with pytest.raises(CheckpointError):
        read_checkpoint(tmp_path / "evil.pt")


def test_release_checkpoint_loads_generator_only(tmp_path):
    from repair.checkpoint import release_from

    state = run("l1", max_steps=1)
    save_checkpoint(tmp_path / "G.pt", release_from(state_payload(state), metrics={"val_psnr": 1}))
    net_G = load_generator(tmp_path / "G.pt")
    assert not net_G.training and net_G.arch == "unet"
    assert net_G.checkpoint_info["metrics"] == {"val_psnr": 1}
    for a, b in zip(net_G.state_dict().values(), state.net_G.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(CheckpointError, match="cannot resume"):
        load_state(tmp_path / "G.pt")
    full = tmp_path / "full.pt"
    save_state(state, full)
    assert load_generator(full).arch == "unet"                  # a full checkpoint works too
    assert full.stat().st_size > (tmp_path / "G.pt").stat().st_size
    save_checkpoint(tmp_path / "G16.pt", release_from(state_payload(state), half=True))
    net16 = load_generator(tmp_path / "G16.pt")
    assert (tmp_path / "G16.pt").stat().st_size < (tmp_path / "G.pt").stat().st_size
    assert all(p.dtype == torch.float32 for p in net16.parameters())
    for a, b in zip(net16.parameters(), state.net_G.parameters()):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-4)


def test_registry_entry_downloads_from_a_local_url(tmp_path):
    from repair.named_weights import WeightsEntry, pretrained
    from repair.registry import HashMismatchError, sha256_file

    from repair.checkpoint import release_from
    state = new_state("l1", ngf=4, ndf=4, image_size=SIZE)
    source = save_checkpoint(tmp_path / "served" / "unet-l1.pt", release_from(state_payload(state)))
    entry = WeightsEntry(url=source.resolve().as_uri(), sha256=sha256_file(source),
                         filename="unet-l1.pt", description="test")
    net_G = pretrained("unet-l1", registry={"unet-l1": entry}, cache_dir=tmp_path / "cache",
                       folder=tmp_path / "nothing-here")
    assert net_G.arch == "unet" and (tmp_path / "cache" / "unet-l1.pt").exists()
    bad = WeightsEntry(url=entry.url, sha256="0" * 64, filename="other.pt", description="bad")
    with pytest.raises(HashMismatchError):
        pretrained("bad", registry={"bad": bad}, cache_dir=tmp_path / "cache",
                   folder=tmp_path / "nothing-here")
    with pytest.raises(ValueError, match="unknown weights"):
        pretrained("nope", registry={}, folder=tmp_path)


def test_committed_weights_are_listed_in_the_manifest(tmp_path):
    """The registry reads checkpoints/MANIFEST.json; every listed file loads and has its hash."""
    import json

    from repair.checkpoint import release_from
    from repair.named_weights import committed_folder, pretrained, weights_registry
    from repair.registry import sha256_file

    state = new_state("l1", ngf=4, ndf=4, image_size=SIZE)
    path = save_checkpoint(tmp_path / "l1-test.pt", release_from(state_payload(state)))
    (tmp_path / "MANIFEST.json").write_text(json.dumps({"weights": {"l1-test": {
        "file": path.name, "sha256": sha256_file(path), "url": None}}}))
    assert pretrained("l1-test", folder=tmp_path).arch == "unet"
    path.write_bytes(path.read_bytes() + b"x")
    from repair.registry import HashMismatchError
    with pytest.raises(HashMismatchError, match="committed file was changed"):
        pretrained("l1-test", folder=tmp_path)
    path.unlink()
    with pytest.raises(FileNotFoundError, match="no download URL"):
        pretrained("l1-test", folder=tmp_path)
    for name, entry in weights_registry().items():              # the real committed files
        local = committed_folder() / entry.filename
        if local.exists():
            assert local.stat().st_size < 30e6, name
            assert sha256_file(local) == entry.sha256, name
            assert read_checkpoint(local)["kind"] == "release"


def test_a_checkpoint_with_nan_weights_is_refused(tmp_path):
    from repair.checkpoint import load_generator, net_record, save_checkpoint
    from repair.nets import UNetGenerator

    net = UNetGenerator(ngf=4, depth=2)
    record = net_record(net)
    first = next(k for k, v in record["state_dict"].items() if v.is_floating_point())
    record["state_dict"][first][...] = float("nan")
    save_checkpoint(tmp_path / "nan.pt", {"kind": "release", "generator": record})
    with pytest.raises(CheckpointError, match="NaN or infinite"):
        load_generator(tmp_path / "nan.pt")


def test_chapter_03_catches_checkpoint_errors_where_it_always_did():
    """The error class lives in repair.checkpoint_check; chapter 03 catches it as
    checkpoint.CheckpointError."""
    from repair import checkpoint, checkpoint_check

    assert checkpoint.CheckpointError is checkpoint_check.CheckpointError
    assert issubclass(checkpoint.ArchitectureMismatchError, checkpoint_check.CheckpointError)
