"""repair.zoo: finding trained generators by name, and `repair evaluate` comparing them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from repair import evaluate as ev
from repair import zoo
from repair.checkpoint import net_record, save_checkpoint
from repair.cli import main
from repair.evaluate_cli import add_evaluate_arguments, run_evaluate
from repair.methods import builtin_methods
from repair.nets import PaperGenerator, UNetGenerator
from repair.registry import HashMismatchError, sha256_file

SIZE = 32


@pytest.fixture(autouse=True)
def no_env_fallback(monkeypatch):
    """Tests see only the folders they make (not a developer's $REPAIR_CHECKPOINTS)."""
    monkeypatch.delenv(zoo.ENV_FALLBACK, raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_generator(kind: str = "unet", seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    net = UNetGenerator(ngf=4, depth=2) if kind == "unet" else PaperGenerator(ngf=2)
    for p in net.parameters():  # away from the identity-like start, so models differ
        p.data.add_(0.05 * torch.randn_like(p))
    return net.eval()


def save_release(path: Path, net: torch.nn.Module, recipe: str = "pix2pix") -> Path:
    """A generator-only checkpoint as repair.train writes it (recipe, metrics, history)."""
    return save_checkpoint(path, {
        "kind": "release", "generator": net_record(net), "recipe": {"name": recipe},
        "epoch": 3, "images_seen": 480,
        "metrics": {"epoch": 3, "val_psnr": 21.5, "val_psnr_damaged": 18.7},
        "history": {"steps": [], "epochs": [{"epoch": e, "val_loss": 1.0 / e} for e in (1, 2, 3)]},
    })


@pytest.fixture
def zoo_dir(tmp_path) -> Path:
    folder = tmp_path / "checkpoints"
    save_release(folder / "unet-a.pt", tiny_generator("unet", 0), "pix2pix")
    save_release(folder / "paper-a.pt", tiny_generator("paper", 1), "paper")
    return folder


@pytest.fixture
def photo_dir(tmp_path) -> Path:
    from PIL import Image

    folder = tmp_path / "clean"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        ramp = np.linspace(0, 255, 40)[None, :] * np.ones((36, 1))
        image = np.clip(ramp * (0.6 + 0.2 * i) + rng.normal(0, 15, (36, 40)), 0, 255)
        Image.fromarray(image.astype(np.uint8), mode="L").save(folder / f"p{i}.png")
    return folder


def test_finds_pt_files_and_training_runs(zoo_dir, tmp_path):
    assert zoo.available_models(zoo_dir) == {"paper-a": zoo_dir / "paper-a.pt",
                                             "unet-a": zoo_dir / "unet-a.pt"}
    runs = tmp_path / "runs"
    save_release(runs / "l1" / zoo.RUN_FILE, tiny_generator("unet", 2), "l1")
    (runs / "empty-run").mkdir()
    assert zoo.models_in(runs) == {"l1": runs / "l1" / zoo.RUN_FILE}
    assert zoo.models_in(tmp_path / "missing") == {}


def test_only_restorers_count(zoo_dir):
    torch.save({"kind": "repair.StyleGAN2Generator", "state_dict": {}}, zoo_dir / "faces.pt")
    save_checkpoint(zoo_dir / "disc.pt", {"generator": {"arch": "patch", "hparams": {},
                                                       "state_dict": {}}})
    save_checkpoint(zoo_dir / "state.pt", {"kind": "full", "generator": net_record(tiny_generator())})
    (zoo_dir / "broken.pt").write_bytes(b"not a checkpoint")
    assert list(zoo.available_models(zoo_dir)) == ["broken", "paper-a", "unet-a"]
    with pytest.raises(ValueError, match="broken.pt"):  # a damaged file is reported, not hidden
        zoo.load_models(["broken"], root=zoo_dir)


def test_manifest_names_and_order_win(zoo_dir):
    manifest = {"weights": {
        "unet-book": {"file": "unet-a.pt", "sha256": sha256_file(zoo_dir / "unet-a.pt")},
        "paper-book": {"file": "paper-a.pt", "sha256": sha256_file(zoo_dir / "paper-a.pt")},
        "gpu-only": {"file": "not-committed.pt", "sha256": "0" * 64, "url": "https://x/y.pt"},
    }}
    (zoo_dir / "MANIFEST.json").write_text(json.dumps(manifest))
    assert list(zoo.available_models(zoo_dir)) == ["unet-book", "paper-book"]  # no absent file
    assert list(zoo.load_models(root=zoo_dir)) == ["unet-book", "paper-book"]


def test_a_listed_file_that_is_not_a_checkpoint_is_reported_not_dropped(zoo_dir):
    # e.g. a release re-saved without the format header: the manifest says it is a restorer,
    # so comparing every model must fail loudly rather than quietly leave it out
    torch.save({"generator": net_record(tiny_generator())}, zoo_dir / "headless.pt")
    manifest = {"weights": {
        "unet-book": {"file": "unet-a.pt", "sha256": sha256_file(zoo_dir / "unet-a.pt")},
        "headless-book": {"file": "headless.pt",
                          "sha256": sha256_file(zoo_dir / "headless.pt")}}}
    (zoo_dir / "MANIFEST.json").write_text(json.dumps(manifest))
    assert list(zoo.available_models(zoo_dir)) == ["unet-book", "headless-book"]
    with pytest.raises(ValueError, match="headless.pt: not a checkpoint of repair.train"):
        zoo.load_models(root=zoo_dir)


def test_manifest_hash_is_checked(zoo_dir):
    manifest = {"weights": {"unet-book": {"file": "unet-a.pt", "sha256": "f" * 64}}}
    (zoo_dir / "MANIFEST.json").write_text(json.dumps(manifest))
    with pytest.raises(HashMismatchError, match="MANIFEST.json records"):
        zoo.load_models(["unet-book"], root=zoo_dir)
    (zoo_dir / "MANIFEST.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a readable checkpoint manifest"):
        zoo.available_models(zoo_dir)


def test_fallback_only_when_root_is_empty(zoo_dir, tmp_path, monkeypatch):
    empty = tmp_path / "no-checkpoints"
    empty.mkdir()
    assert zoo.available_models(empty) == {}
    assert list(zoo.available_models(empty, fallback=[tmp_path / "missing", zoo_dir])) == \
        ["paper-a", "unet-a"]
    monkeypatch.setenv(zoo.ENV_FALLBACK, str(zoo_dir))
    assert list(zoo.available_models(empty)) == ["paper-a", "unet-a"]
    other = tmp_path / "other"
    save_release(other / "only.pt", tiny_generator("unet", 3))
    assert list(zoo.available_models(other)) == ["only"]  # root has models: no fallback


def test_paper_profile_compares_the_runs_of_chapter_03(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert zoo.profile_folder("paper") is None            # nothing trained yet: checkpoints/
    assert zoo.profile_folder("book", "mine") == Path("mine")
    save_release(tmp_path / zoo.PAPER_RUNS / "pix2pix" / zoo.RUN_FILE, tiny_generator("unet", 4))
    assert zoo.profile_folder("paper") == zoo.PAPER_RUNS
    assert list(zoo.available_models(zoo.profile_folder("paper"))) == ["pix2pix"]
    assert zoo.profile_folder("book") is None             # book and tiny keep the committed ones


def test_load_models_and_methods_restore_like_the_network(zoo_dir, tmp_path):
    models = zoo.load_models("unet-a, paper-a", root=zoo_dir)
    assert list(models) == ["unet-a", "paper-a"] and not models["unet-a"].training
    info = zoo.model_info(models["paper-a"])
    assert info["recipe"] == "paper" and info["arch"] == "paper-generator"
    assert info["epoch"] == 3 and info["images_seen"] == 480 and info["val_psnr"] == 21.5
    assert info["mix"] == "paper" and info["image_size"] is None     # runs before --mix: paper
    plates = tmp_path / "plates.pt"
    save_checkpoint(plates, {**torch.load(zoo_dir / "unet-a.pt", weights_only=True),
                             "settings": {"mix": "daguerreotype", "image_size": 128}})
    info = zoo.model_info(zoo.load_models(["plates"], root=tmp_path)["plates"])
    assert info["mix"] == "daguerreotype" and info["image_size"] == 128
    methods = zoo.learned_methods(["unet-a"], root=zoo_dir)
    x = torch.rand(2, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        expected = tiny_generator("unet", 0)(x)
    assert torch.allclose(methods["unet-a"](x, None), expected, atol=1e-6)


def test_epoch_history_prefers_the_whole_run(zoo_dir, tmp_path):
    assert [r["epoch"] for r in zoo.epoch_history(zoo_dir / "unet-a.pt")] == [1, 2, 3]
    run = tmp_path / "runs" / "l1"
    save_release(run / zoo.RUN_FILE, tiny_generator("unet", 2), "l1")
    (run / "history.json").write_text(json.dumps({"epochs": [{"epoch": e} for e in range(1, 6)]}))
    assert len(zoo.epoch_history(run / zoo.RUN_FILE)) == 5
    per_epoch = [{"epoch": e, "val_loss": 0.1} for e in range(1, 8)]
    (zoo_dir / "MANIFEST.json").write_text(json.dumps({"weights": {"unet-book": {
        "file": "unet-a.pt", "sha256": sha256_file(zoo_dir / "unet-a.pt"),
        "per_epoch": per_epoch}}}))
    assert zoo.epoch_history(zoo_dir / "unet-a.pt") == per_epoch


def test_unknown_name_is_a_clear_error(zoo_dir):
    with pytest.raises(zoo.UnknownModelError, match=r"unknown model 'unet-z'.*paper-a, unet-a"):
        zoo.load_models(["unet-a", "unet-z"], root=zoo_dir)
    assert issubclass(zoo.UnknownModelError, ValueError)


def evaluate_args(*argv: str) -> argparse.Namespace:
    return add_evaluate_arguments(argparse.ArgumentParser()).parse_args(list(argv))


def test_evaluate_command_takes_learned_names(zoo_dir, photo_dir, tmp_path, capsys):
    out = tmp_path / "results.json"
    args = evaluate_args("--clean", str(photo_dir), "--checkpoints", str(zoo_dir), "--methods",
                         "damaged,inpaint-sharpen", "unet-a", "--size", str(SIZE), "--json",
                         str(out), "--no-progress")
    assert run_evaluate(args) == 0
    assert "unet-a" in capsys.readouterr().out
    results = json.loads(out.read_text())
    assert results["settings"]["methods"] == ["damaged", "inpaint-sharpen", "unet-a"]
    # the learned method's numbers are those of its network on the same damaged photos
    net = zoo.load_models(["unet-a"], root=zoo_dir)["unet-a"]
    direct = ev.evaluate(photo_dir, {"unet-a": net}, size=SIZE, progress=False)
    assert results["methods"]["unet-a"]["psnr"] == pytest.approx(direct["methods"]["unet-a"]["psnr"])
    assert results["methods"]["unet-a"]["psnr"] != pytest.approx(
        results["methods"]["damaged"]["psnr"])


def test_evaluate_command_default_is_everything(zoo_dir, photo_dir, tmp_path, capsys):
    out = tmp_path / "all.json"
    assert main(["evaluate", "--clean", str(photo_dir), "--checkpoints", str(zoo_dir), "--limit",
                 "1", "--size", str(SIZE), "--json", str(out), "--no-progress"]) == 0
    names = json.loads(out.read_text())["settings"]["methods"]
    assert names == [*builtin_methods(), "paper-a", "unet-a"]


def test_evaluate_command_unknown_name(zoo_dir, photo_dir, capsys):
    assert main(["evaluate", "--clean", str(photo_dir), "--checkpoints", str(zoo_dir),
                 "--methods", "damaged,unet-z", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "unknown method 'unet-z'" in err and "unet-a" in err and "median-clahe" in err


def test_validation_photos_are_the_training_split_never_eval(tmp_path):
    from conftest import save_png
    from repair.data import split_files
    from repair.images import find_images
    from repair.validation import validation_photos, validation_psnr

    rng = np.random.default_rng(0)
    for i in range(20):
        save_png(tmp_path / f"p{i:02d}.png", rng.integers(0, 256, (40 + i, 50), dtype=np.uint8))
    x = validation_photos(tmp_path, size=32, limit=5)
    assert x.shape == (2, 1, 32, 32)                        # 10% of 20 photos
    _, val = split_files(find_images(tmp_path), 0.1, 0)
    from repair.images import center_square, load_gray
    assert torch.equal(x[0], center_square(load_gray(val[0]), 32))
    scores = validation_psnr({"damaged": lambda xd, m: xd, "clean?": lambda xd, m: xd * 0}, x)
    assert set(scores) == {"damaged", "clean?"} and scores["damaged"] > scores["clean?"]
    with pytest.raises(FileNotFoundError):
        validation_photos(tmp_path / "missing")
