"""The evaluation harness repair.evaluate on a tiny folder of generated photos."""

import argparse
import json

import numpy as np
import pytest
import torch
from PIL import Image

from repair import evaluate as ev
from repair.classical import CLASSICAL
from repair.methods import builtin_methods
from repair.results import ORACLES
from repair.damage import DAMAGES, PLATE_DAMAGES

SIZE = 32


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory):
    """Three small gray PNGs, one of them in a sub-folder (the search is recursive)."""
    root = tmp_path_factory.mktemp("clean")
    rng = np.random.default_rng(0)
    (root / "sub").mkdir()
    for i, name in enumerate(["a.png", "b.png", "sub/c.png"]):
        ramp = np.linspace(0, 255, 48)[None, :] * np.ones((40, 1))
        noise = rng.normal(0, 20, (40, 48))
        image = np.clip(ramp * (0.5 + 0.2 * i) + noise, 0, 255).astype(np.uint8)
        Image.fromarray(image, mode="L").save(root / name)
    return root


@pytest.fixture(scope="module")
def results(photo_dir):
    return ev.evaluate(photo_dir, seed=5, size=SIZE, progress=False)


def without_timing(result):
    return [{k: v for k, v in row.items() if k != "ms"} for row in result["rows"]]


def test_documented_structure(results):
    names = ["damaged", *CLASSICAL, *ORACLES]
    assert set(results) >= {"settings", "methods", "rows", "skipped"}
    assert "per_damage" not in results
    assert list(results["methods"]) == names
    for summary in results["methods"].values():
        assert set(summary) == {"psnr", "ssim", "edge", "lpips", "ms_per_image", "images", "gain",
                                "worse"}
        assert summary["images"] == 3 and summary["ms_per_image"] >= 0
        assert np.isfinite([summary["psnr"], summary["ssim"], summary["edge"]]).all()
    assert len(results["rows"]) == 3 * len(names)
    assert {r["image"] for r in results["rows"]} == {"a.png", "b.png", "sub/c.png"}
    assert [r["seed"] for r in results["rows"][::len(names)]] == [5, 6, 7]
    settings = results["settings"]
    assert settings["images"] == 3 and settings["size"] == SIZE and settings["seed"] == 5
    assert set(settings["damages"]["mix"]) == {*DAMAGES, *PLATE_DAMAGES}
    assert {k for k, v in settings["damages"]["mix"].items() if v} == set(DAMAGES)
    json.dumps(results, allow_nan=False)  # JSON-serialisable as it is
    if results["methods"]["damaged"]["lpips"] is None:
        assert results["skipped"]["lpips"].startswith("skipped:")


def test_damage_is_measured(results):
    damaged = results["methods"]["damaged"]
    assert damaged["psnr"] < 40 and damaged["ssim"] < 1


def test_deterministic_for_a_seed(photo_dir, results):
    again = ev.evaluate(photo_dir, seed=5, size=SIZE, progress=False)
    assert without_timing(again) == without_timing(results)
    other = ev.evaluate(photo_dir, methods=["damaged"], seed=6, size=SIZE, progress=False)
    mine = [r for r in without_timing(results) if r["method"] == "damaged"]
    assert without_timing(other) != mine


def test_per_damage_breakdown(photo_dir):
    result = ev.evaluate(photo_dir, methods="damaged,median-clahe", per_damage=True, limit=2,
                         size=SIZE, progress=False)
    assert list(result["per_damage"]) == [*DAMAGES, "clean", "daguerreotype"]
    for name, strengths in result["settings"]["damages"].items():
        if name in DAMAGES:
            assert [k for k, v in strengths.items() if v > 0] == [name]
    assert not any(result["settings"]["damages"]["clean"].values())
    plates = result["settings"]["damages"]["daguerreotype"]
    assert all(plates[name] > 0 for name in PLATE_DAMAGES)
    assert set(result["per_damage"]["cracks"]) == {"damaged", "median-clahe"}
    assert len(result["rows"]) == 2 * (3 + len(DAMAGES)) * 2
    clean = result["per_damage"]["clean"]
    assert clean["damaged"]["gain"] == 0 and clean["damaged"]["worse"] == 0
    assert clean["median-clahe"]["worse"] == 2   # a median filter changes a clean photo
    table = ev.format_table(result)
    assert "cracks only" in table and "median-clahe" in table and "PSNR" in table
    assert "clean input" in table and "daguerreotype mix" in table


def test_callables_and_generators_as_methods(photo_dir):
    calls = []

    def negative(x_damaged, mask):
        calls.append(mask.dtype)
        return -x_damaged

    result = ev.evaluate(photo_dir, {"damaged": None, "neg": negative, "net": torch.nn.Identity()},
                         limit=1, size=SIZE, progress=False)
    assert calls and calls[0] == torch.bool
    summary = result["methods"]
    assert summary["net"]["psnr"] == pytest.approx(summary["damaged"]["psnr"])
    assert summary["neg"]["psnr"] < summary["damaged"]["psnr"]


def test_blind_classical_never_sees_the_true_mask(photo_dir):
    original = CLASSICAL["inpaint-sharpen"]
    methods = builtin_methods()
    x = torch.zeros(1, 1, SIZE, SIZE)
    mask = torch.ones_like(x, dtype=torch.bool)
    blind, oracle = methods["inpaint-sharpen"](x, mask), methods["inpaint-sharpen-oracle"](x, mask)
    assert torch.equal(blind, original(x, None)) and torch.equal(oracle, original(x, mask))
    result = ev.evaluate(photo_dir, ["damaged", "inpaint-sharpen", "inpaint-sharpen-oracle"],
                         limit=2, size=SIZE, progress=False)
    scores = result["methods"]
    assert scores["inpaint-sharpen"]["psnr"] != scores["inpaint-sharpen-oracle"]["psnr"]
    assert "upper bound" in ev.format_table(result)


def test_tensor_input():
    x = torch.rand(2, 1, 40, 40, generator=torch.Generator().manual_seed(0)) * 2 - 1
    result = ev.evaluate(x, ["damaged"], size=SIZE, progress=False)
    assert result["settings"]["images"] == 2 and result["rows"][0]["image"] == "image-000"


def test_save_json_round_trip(results, tmp_path):
    path = ev.save_json(results, tmp_path / "deep" / "results.json")
    assert json.loads(path.read_text())["methods"] == results["methods"]
    assert not list(path.parent.glob("*.tmp"))


def test_bad_input_raises_clear_errors(photo_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="no such"):
        ev.evaluate(tmp_path / "missing", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no images"):
        ev.evaluate(tmp_path / "empty", progress=False)
    with pytest.raises(ValueError, match="unknown method 'unet'"):
        ev.evaluate(photo_dir, ["damaged", "unet"], progress=False)
    with pytest.raises(ValueError, match="returned"):
        ev.evaluate(photo_dir, {"bad": lambda x, m: x[..., :8]}, size=SIZE, progress=False)
    with pytest.raises(ValueError, match="limit"):
        ev.evaluate(photo_dir, limit=0, progress=False)
    with pytest.raises(ValueError, match="unknown damage"):
        ev.evaluate(photo_dir, damages={"mould": 0.5}, progress=False)


def test_command_line(photo_dir, tmp_path, capsys):
    from repair.evaluate_cli import add_evaluate_arguments, run_evaluate

    parser = add_evaluate_arguments(argparse.ArgumentParser())
    out = tmp_path / "eval.json"
    args = parser.parse_args(["--clean", str(photo_dir), "--methods", "damaged", "inpaint-sharpen",
                              "--limit", "2", "--size", str(SIZE), "--json", str(out),
                              "--no-progress"])
    assert run_evaluate(args) == 0
    assert "inpaint-sharpen" in capsys.readouterr().out
    assert json.loads(out.read_text())["settings"]["images"] == 2
    bad = parser.parse_args(["--clean", str(photo_dir), "--methods", "nope", "--no-progress"])
    assert run_evaluate(bad) == 2
    assert "unknown method 'nope'" in capsys.readouterr().err
