"""Installable like the tools it stands beside (issue 15).

* the dependency lists of pyproject.toml: lower bounds only, the book and test extras, and
  requirements.txt derived from them;
* one repository address: ``_config.yml`` gives it; the notebooks' badges, their Colab install
  cell, book/setup.md, pyproject.toml and repair.named_weights' download address agree with it;
* the manifests record commands relative to the repository;
* the wheel: built, installed into a fresh virtual environment (the project's packages, torch among
  them, reachable through a ``.pth`` file, as ``--system-site-packages`` would over a global
  install), and ``repair --version``, ``repair --help`` and ``repair restore`` run from outside the
  repository with nothing to download.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import numpy as np
import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    from pip._vendor import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def requirement_name(spec: str) -> str:
    return re.split(r"[<>=!~ ;\[]", spec, maxsplit=1)[0].lower()


# ---------------------------------------------------------------- dependency lists


def test_runtime_dependencies_are_lower_bounds_for_what_the_package_imports():
    deps = PYPROJECT["project"]["dependencies"]
    names = {requirement_name(d) for d in deps}
    assert {"torch", "torchvision", "numpy", "scipy", "scikit-image", "scikit-learn",
            "opencv-python-headless", "pillow", "matplotlib", "tqdm", "platformdirs"} <= names
    for spec in deps:  # Colab and Kaggle keep their own torch builds: never a pin or a cap
        assert re.fullmatch(r"[A-Za-z0-9_.-]+>=[0-9][0-9.]*", spec), spec


def test_book_and_test_extras_and_requirements_come_from_pyproject():
    extras = {name: {requirement_name(d) for d in deps}
              for name, deps in PYPROJECT["project"]["optional-dependencies"].items()}
    assert {"jupyterlab", "jupyter-book", "ipywidgets", "ipykernel", "papermill", "nbformat",
            "nbclient", "sphinx-mathjax-offline"} <= extras["book"]
    assert {"pytest", "nbval", "setuptools"} <= extras["test"]
    lines = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines == ["-e .[book,test]"]
    assert PYPROJECT["project"]["scripts"]["repair"] == "repair.cli:main"


def test_make_lab_opens_the_course_in_jupyterlab():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^lab: .*\n\t\$\(VENV\)/bin/jupyter lab notebooks/", makefile, re.M)
    # `jupyter lab` runs the jupyter-lab script beside jupyter (not started here: it serves)
    scripts = Path(sys.executable).parent
    installed = importlib.util.find_spec("jupyterlab") is not None
    assert installed and (scripts / "jupyter").exists() and (scripts / "jupyter-lab").exists(), \
        "JupyterLab is not installed: run `make venv` (pip install -e .[book,test])"
    assert importlib.util.find_spec("jupyterlab.labapp") is not None


# ---------------------------------------------------------------- one repository address


def repository() -> tuple[str, str]:
    """``repository: url`` and ``branch`` of _config.yml (the one place that says them)."""
    text = (ROOT / "_config.yml").read_text()
    block = re.search(r"^repository:\n((?:[ \t]+.*\n)+)", text, re.M)
    assert block, "_config.yml has no repository: block"
    url = re.search(r"^\s+url:\s*(\S+)", block.group(1), re.M).group(1).rstrip("/")
    branch = re.search(r"^\s+branch:\s*(\S+)", block.group(1), re.M).group(1)
    return url, branch


def github_path(url: str) -> str:
    assert url.startswith("https://github.com/"), url
    return url.removeprefix("https://github.com/")


def test_the_badges_use_the_configured_repository():
    url, branch = repository()
    for nb in NOTEBOOKS:
        text = "".join(json.loads(nb.read_text())["cells"][0]["source"])
        own = f"{github_path(url)}/blob/{branch}/notebooks/{nb.name}"
        colab = re.findall(r"\(https://colab\.research\.google\.com/github/([^)]+)\)", text)
        kaggle = re.findall(r"\(https://kaggle\.com/kernels/welcome\?src=https://github\.com/"
                            r"([^)]+)\)", text)
        assert colab == [own] and kaggle == [own], f"{nb.name}: badges {colab} {kaggle}"


def test_the_colab_install_cell_and_setup_page_clone_the_configured_repository():
    url, _ = repository()
    for nb in NOTEBOOKS:
        cells = ["".join(c["source"]) for c in json.loads(nb.read_text())["cells"]
                 if c["cell_type"] == "code"]
        install = [c for c in cells if "google.colab" in c]
        assert install, f"{nb.name}: no Colab/Kaggle install cell"
        clones = re.findall(r"git clone[^\n]*?(https://\S+)", install[0])
        assert clones == [url], f"{nb.name}: clones {clones}, _config.yml says {url}"
        assert re.search(r"%pip install -q -e repair\b", install[0]), nb.name
    setup = (ROOT / "book" / "setup.md").read_text()
    addresses = set(re.findall(r"https://github\.com/[\w.-]+/[\w.-]+", setup))
    assert addresses == {url}, f"book/setup.md names {addresses}, _config.yml {url}"


def test_package_metadata_and_download_address_use_the_configured_repository():
    from repair import named_weights

    url, branch = repository()
    assert PYPROJECT["project"]["urls"]["Repository"] == url
    assert (named_weights.REPOSITORY, named_weights.BRANCH) == (url, branch)


def test_manifests_record_commands_relative_to_the_repository():
    machine = re.compile(r"(?<![\w.])/(work|home|root|tmp|Users|mnt|scratch)/")
    for path in sorted((ROOT / "checkpoints").glob("*.md")) + [ROOT / "checkpoints/MANIFEST.json"]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert not machine.search(line), f"{path.name}:{number}: a machine path: {line.strip()}"
    weights = json.loads((ROOT / "checkpoints/MANIFEST.json").read_text())["weights"]
    for name, entry in weights.items():
        assert not os.path.isabs(entry["file"]) and "/" not in entry["file"], name


# ---------------------------------------------------------------- the wheel, installed


WHEEL_SOURCES = ["pyproject.toml", "README.md", "repair", "checkpoints/MANIFEST.json",
                 "checkpoints/restorer-book.pt"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from a copy of the sources the package needs (the clone stays clean)."""
    if importlib.util.find_spec("setuptools") is None:
        pytest.skip("setuptools is not installed here, so no wheel can be built offline: "
                    "install the test extra (pip install -e .[test])")
    src = tmp_path_factory.mktemp("src")
    for name in WHEEL_SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "weights"))
        else:
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    dist = tmp_path_factory.mktemp("dist")
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                          "--no-index", "--wheel-dir", str(dist), str(src)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    (found,) = dist.glob("repair-*.whl")
    return found


def test_the_wheel_ships_the_default_restorer_and_no_other_weights(wheel):
    from repair.restore import DEFAULT_MODEL

    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        weights = sorted(n for n in names if n.startswith("repair/weights/"))
        assert weights == ["repair/weights/MANIFEST.json", f"repair/weights/{DEFAULT_MODEL}.pt"]
        assert "repair/cli.py" in names and "repair/zoo.py" in names
        assert not [n for n in names if n.startswith(("tests/", "notebooks/", "checkpoints/"))]
        metadata = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "Requires-Dist: torch>=" in metadata and 'extra == "book"' in metadata
    assert wheel.stat().st_size < 10e6


def run(args: list, cwd: Path, env: dict, status: int = 0) -> subprocess.CompletedProcess:
    out = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == status, f"{args}: exit {out.returncode}\n{out.stdout[-3000:]}\n" \
                                     f"{out.stderr[-3000:]}"
    return out


CHECK_REQUIREMENTS = """
import importlib.metadata as md
from packaging.requirements import Requirement
bad = []
for spec in md.requires("repair"):
    req = Requirement(spec)
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue  # an extra (book, test)
    try:
        version = md.version(req.name)
    except md.PackageNotFoundError:
        bad.append(f"{req}: not installed")
        continue
    if not req.specifier.contains(version, prereleases=True):
        bad.append(f"{req}: found {version}")
print("\\n".join(bad) or "ok")
"""


def test_the_installed_wheel_restores_a_photo_from_outside_the_repository(wheel, tmp_path):
    from PIL import Image

    env_dir = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True,
                   timeout=600)
    python = env_dir / "bin" / "python"
    if not python.exists():
        python = env_dir / "Scripts" / "python.exe"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(REPAIR_CACHE=str(tmp_path / "empty-cache"),      # nothing cached ...
               REPAIR_WEIGHTS_URL="http://127.0.0.1:9/nothing/",  # ... and nothing to download
               OMP_NUM_THREADS="1")
    run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps",
         "--no-index", wheel], tmp_path, env)
    # then the project's packages (torch, ...) become reachable, after the wheel's own files
    site = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
               tmp_path, env).stdout.strip()
    (Path(site) / "project-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    where = run([python, "-c", "import repair, repair.named_weights as w; print(repair.__file__); "
                 "print(w.COMMITTED == w.PACKAGED)"], tmp_path, env).stdout.split()
    assert Path(where[0]).is_relative_to(env_dir) and where[1] == "True"
    assert run([python, "-c", CHECK_REQUIREMENTS], tmp_path, env).stdout.strip() == "ok"

    repair = python.parent / "repair"
    assert run([repair, "--version"], tmp_path, env).stdout.strip() == "repair 0.1.0"
    assert "restore" in run([repair, "--help"], tmp_path, env).stdout
    rng = np.random.default_rng(0)
    photo = np.clip(np.linspace(40, 220, 72)[None, :] + rng.normal(0, 12, (56, 72)), 0, 255)
    Image.fromarray(photo.astype(np.uint8), "L").save(tmp_path / "old.png")
    run([repair, "restore", "old.png", "--out", "restored"], tmp_path, env)
    with Image.open(tmp_path / "restored" / "old.png") as out:
        assert out.size == (72, 56)
    assert not (tmp_path / "empty-cache").exists()   # the default restorer came with the wheel
    # another committed model is known by name; offline, the error says what to fetch and where
    err = run([repair, "restore", "old.png", "--out", "other", "--model", "pix2pix-book"],
              tmp_path, env, status=2).stderr
    assert "http://127.0.0.1:9/nothing/pix2pix-book.pt" in err
    assert str(tmp_path / "empty-cache" / "pix2pix-book.pt") in err and "REPAIR_CACHE" in err
