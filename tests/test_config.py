import subprocess
import sys
from pathlib import Path

import pytest

from repair.config import PROFILES, data_root, default_profile, get_config, imagenette_root


def test_three_profiles_with_the_same_fields():
    assert set(PROFILES) == {"tiny", "book", "paper"}
    assert get_config("paper").image_size == 256
    assert get_config("paper").num_epochs == 10 and get_config("paper").source == "imagenette"
    assert get_config("tiny").source == "skimage"  # CI needs no data files


def test_optimiser_settings_live_only_in_the_recipes():
    from dataclasses import fields

    from repair.config import Config
    from repair.recipes import get_recipe

    assert not {"lr", "betas", "batch_size"} & {f.name for f in fields(Config)}
    paper = get_recipe("paper")                      # Section II.D of the paper
    assert (paper.lr, paper.betas, paper.batch_size) == (1e-4, (0.5, 0.999), 4)


def test_overrides_and_errors():
    assert get_config("tiny", image_size=48).image_size == 48
    with pytest.raises(ValueError, match="unknown profile"):
        get_config("huge")
    with pytest.raises(TypeError):
        get_config("tiny", not_a_field=1)


def test_default_profile_follows_environment(monkeypatch):
    monkeypatch.delenv("REPAIR_PROFILE", raising=False)
    monkeypatch.setenv("CI", "true")
    assert default_profile() == "tiny"
    monkeypatch.setenv("CI", "")          # set at all, as the notebooks test it
    assert default_profile() == "tiny"
    monkeypatch.delenv("CI")
    assert default_profile() == "book"
    monkeypatch.setenv("REPAIR_PROFILE", "paper")
    assert default_profile() == "paper"


def test_data_root_env(monkeypatch, tmp_path):
    monkeypatch.setenv("REPAIR_DATA", str(tmp_path))
    assert data_root() == tmp_path


def test_import_has_no_side_effects():
    code = ("import sys, repair; import repair.config; "
            "print(sorted(m for m in ('torch', 'numpy', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_imagenette_root_env(monkeypatch, tmp_path):
    monkeypatch.setenv("REPAIR_IMAGENETTE", str(tmp_path))
    assert imagenette_root() == tmp_path
    monkeypatch.delenv("REPAIR_IMAGENETTE")
    assert imagenette_root() == Path("~/data").expanduser()
