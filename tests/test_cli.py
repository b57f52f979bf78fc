import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from repair.cli import main


def test_damage_writes_pngs_and_masks(photo_folder, tmp_path):
    out = tmp_path / "out"
    assert main(["damage", str(photo_folder), "--out", str(out), "--masks", "--quiet"]) == 0
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert written == ["p0.png", "p0_mask.png", "p1.png", "p1_mask.png", "p2.png", "p2_mask.png",
                       "sub/p3.png", "sub/p3_mask.png", "sub/p4.png", "sub/p4_mask.png"]
    img = Image.open(out / "p0.png")
    assert img.mode == "L" and img.size == Image.open(photo_folder / "p0.png").size
    mask = np.asarray(Image.open(out / "p0_mask.png"))
    assert set(np.unique(mask)) <= {0, 255} and mask.any()


def test_damage_is_deterministic_and_order_independent(photo_folder, tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    main(["damage", str(photo_folder), "--out", str(a), "--seed", "4", "--quiet"])
    main(["damage", str(photo_folder / "p2.png"), "--out", str(b), "--seed", "4", "--quiet"])
    main(["damage", str(photo_folder / "p2.png"), "--out", str(c), "--seed", "5", "--quiet"])
    assert (a / "p2.png").read_bytes() == (b / "p2.png").read_bytes()
    assert (a / "p2.png").read_bytes() != (c / "p2.png").read_bytes()


def test_strengths_are_used(photo_folder, tmp_path):
    out = tmp_path / "o"
    main(["damage", str(photo_folder / "p0.png"), "--out", str(out), "--blur", "0", "--splotches",
          "0", "--cracks", "0", "--contrast", "0", "--quiet"])
    assert np.array_equal(np.asarray(Image.open(out / "p0.png")),
                          np.asarray(Image.open(photo_folder / "p0.png")))


def test_never_overwrites_inputs(photo_folder):
    before = {p: p.read_bytes() for p in photo_folder.rglob("*.png")}
    assert main(["damage", str(photo_folder), "--out", str(photo_folder), "--quiet"]) == 2
    assert {p: p.read_bytes() for p in photo_folder.rglob("*.png")} == before


def test_bad_file_is_reported_and_batch_goes_on(photo_folder, tmp_path, capsys):
    (photo_folder / "zz_broken.png").write_text("not an image")
    out = tmp_path / "out"
    assert main(["damage", str(photo_folder), "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "5 of 6 written" in err and "zz_broken.png" in err and "not an image" in err
    assert len(list(out.rglob("*.png"))) == 5 and not (out / "zz_broken.png").exists()


def test_usage_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["damage", "x.png", "--out", str(tmp_path), "--blur", "2"])
    assert exc.value.code == 2 and "between 0 and 1" in capsys.readouterr().err
    assert main(["damage", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert main([]) == 2


def test_python_dash_m_and_console_script(tmp_path):
    result = subprocess.run([sys.executable, "-m", "repair", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "damage" in result.stdout


def test_evaluate_prints_a_table_and_writes_json(photo_folder, tmp_path, capsys):
    import json

    out = tmp_path / "results.json"
    assert main(["evaluate", "--clean", str(photo_folder), "--limit", "2", "--size", "32",
                 "--methods", "damaged,median-clahe", "--json", str(out), "--no-progress"]) == 0
    table = capsys.readouterr().out
    assert "median-clahe" in table and "PSNR" in table
    results = json.loads(out.read_text())
    assert set(results["methods"]) == {"damaged", "median-clahe"}
    assert main(["evaluate", "--clean", str(photo_folder), "--methods", "magic"]) == 2


def test_restore_with_a_classical_model(photo_folder, tmp_path, capsys):
    out = tmp_path / "restored"
    assert main(["restore", str(photo_folder), "--out", str(out), "--model", "median-clahe",
                 "--quiet"]) == 0
    assert len(list(out.rglob("*.png"))) == 5
    assert "5 of 5 written" in capsys.readouterr().err


def test_restore_usage_errors(photo_folder, tmp_path, capsys):
    assert main(["restore", str(photo_folder), "--out", str(tmp_path / "o"), "--model",
                 "no-such-model"]) == 2
    assert "unknown model" in capsys.readouterr().err
    assert main(["restore", str(photo_folder), "--out", str(tmp_path / "o"), "--model",
                 "median-clahe", "--tile", "8"]) == 2
    assert main(["restore", str(photo_folder), "--out", str(tmp_path / "o"), "--checkpoint",
                 str(tmp_path / "missing.pt")]) == 2
    assert not (tmp_path / "o").exists()


def test_plate_damages_on_the_command_line(photo_folder, tmp_path):
    plain, plate = tmp_path / "plain", tmp_path / "plate"
    main(["damage", str(photo_folder / "p0.png"), "--out", str(plain), "--quiet"])
    main(["damage", str(photo_folder / "p0.png"), "--out", str(plate), "--tarnish", "0.8",
          "--dust", "0.5", "--quiet"])
    assert (plain / "p0.png").read_bytes() != (plate / "p0.png").read_bytes()


def test_fetch_loc_uses_the_loc_client(monkeypatch, tmp_path, capsys):
    import repair.archive

    calls = {}

    def fake_download(out_dir, limit, max_size, progress):
        calls.update(out_dir=out_dir, limit=limit, max_size=max_size)
        return [tmp_path / "a.jpg"]

    monkeypatch.setattr(repair.archive, "download_daguerreotypes", fake_download)
    assert main(["fetch-loc", "--out", str(tmp_path), "--limit", "3", "--quiet"]) == 0
    assert calls == {"out_dir": str(tmp_path), "limit": 3, "max_size": 1024}
    assert "1 plates" in capsys.readouterr().err
    assert main(["fetch-loc", "--out", str(tmp_path), "--limit", "0"]) == 2


def test_restore_with_the_shipped_default_weights(tmp_path, capsys):
    from repair import zoo
    from repair.restore import DEFAULT_MODEL

    if DEFAULT_MODEL not in zoo.available_models():
        pytest.fail(f"{DEFAULT_MODEL} is not in checkpoints/: the shipped weights are missing")
    rgba = np.zeros((70, 90, 4), np.uint8)
    rgba[..., :3] = np.random.default_rng(0).integers(0, 256, (70, 90, 3))
    rgba[..., 3] = 255
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(rgba, "RGBA").save(src / "scan.png")
    Image.fromarray(np.full((40, 33), 40000, np.uint16)).save(src / "deep.png")
    out = tmp_path / "out"
    assert main(["restore", str(src), "--out", str(out), "--tile", "64", "--overlap", "16",
                 "--quiet"]) == 0
    assert Image.open(out / "scan.png").size == (90, 70) and Image.open(out / "scan.png").mode == "RGBA"
    assert Image.open(out / "deep.png").mode.startswith("I")


@pytest.mark.parametrize("device", ["gpu0", "mps", "cuda:7", "tpu"])
@pytest.mark.parametrize("command", ["restore", "evaluate", "invert"])
def test_a_device_this_machine_lacks_is_refused_up_front(tmp_path, capsys, command, device):
    import torch

    if device.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has that many GPUs")
    from repair.cli import main

    photo = tmp_path / "a.png"
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(photo)
    args = {"restore": ["restore", str(photo), "--out", str(tmp_path / "o")],
            "evaluate": ["evaluate", "--clean", str(tmp_path), "--methods", "damaged"],
            "invert": ["invert", str(photo), "--out", str(tmp_path / "o")]}[command]
    assert main([*args, "--device", device]) == 2
    err = capsys.readouterr().err
    assert device in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()
