"""Every command against the bad-input corpus (tests/make_bad_inputs.py): the exit status, the
message, and that no file other than the run's new outputs changed (issue #16).

Exit statuses: 0 done, 1 some inputs failed (reported, the rest done), 2 refused up front
(nothing written), 130 interrupted.
"""

from __future__ import annotations

import hashlib
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import make_bad_inputs as corpus
from repair.cli import main

pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.filterwarnings("ignore::UserWarning")]

FAST = ["--model", "median-clahe", "--quiet"]  # a classical restorer: no weights, instant


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, dict[str, Path]]:
    return corpus.build(tmp_path_factory.mktemp("corpus"))


def snapshot(root: Path) -> dict[Path, str]:
    return {p: hashlib.sha1(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def cli(tmp_path, files, capsys):
    """``cli(argv, new_under=None)`` runs ``repair argv`` and checks that files already there (the
    corpus and ``tmp_path``) are untouched and new files appear only under ``new_under``.
    Returns ``(exit status, stderr + stdout, new files)``."""
    roots = [tmp_path, next(iter(files["bad_images"].values())).parents[1]]

    def run(argv, new_under: Path | None = None):
        before = {root: snapshot(root) for root in roots}
        capsys.readouterr()
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:             # argparse refusing an option
            code = exc.code
        captured = capsys.readouterr()
        new = []
        for root in roots:
            after = snapshot(root)
            changed = [p for p, digest in before[root].items() if after.get(p) != digest]
            assert not changed, f"files changed or removed: {changed}"
            new += [p for p in after if p not in before[root]]
        if new_under is None:
            assert not new, f"files written by a refused run: {new}"
        else:
            assert all(new_under in p.parents for p in new), new
        return code, captured.err + captured.out, new

    return run


def photos(folder: Path, n: int = 2) -> Path:
    for i in range(n):
        corpus.good_photo(folder / f"p{i}.png", seed=i)
    return folder


# ---------------------------------------------------------------- restore and damage: bad photos

BAD_IMAGE_MESSAGES = {
    "text_named_png": "not an image", "empty_file": "not an image",
    "truncated_png": "corrupt or truncated", "truncated_jpeg": "corrupt or truncated",
    "png_header_only": "not an image", "garbage_bmp": "corrupt or truncated",
    "html_named_jpg": "not an image", "too_small": "too small", "one_pixel_wide": "too small",
    "inflates_81mp": "81,000,000 pixels is too large", "inflates_132mp": "too large to decode",
}


@pytest.mark.parametrize("command", ["restore", "damage"])
@pytest.mark.parametrize("case", sorted(BAD_IMAGE_MESSAGES))
def test_a_bad_photo_is_reported_and_the_batch_goes_on(cli, files, tmp_path, command, case):
    good = corpus.good_photo(tmp_path / "in" / "good.png")
    out = tmp_path / "out"
    extra = FAST if command == "restore" else ["--quiet"]
    code, text, new = cli([command, good, files["bad_images"][case], "--out", out, *extra], out)
    assert code == 1
    assert "1 of 2 written" in text and BAD_IMAGE_MESSAGES[case] in text
    assert files["bad_images"][case].name in text
    assert [p.name for p in new] == ["good.png"]


def test_pixel_limit_is_one_number_and_pillow_is_left_as_it_was(files):
    from repair.images import MAX_PIXELS, ImageError, read_image

    before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(ImageError, match=f"limit is {MAX_PIXELS:,}"):
        read_image(files["bad_images"]["inflates_81mp"])
    assert Image.MAX_IMAGE_PIXELS == before
    import subprocess
    import sys
    code = "import PIL.Image as I; b = I.MAX_IMAGE_PIXELS; import repair; " \
           "import repair.images, repair.restore; assert I.MAX_IMAGE_PIXELS == b"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0   # import: no effect


# ---------------------------------------------------------------- restore: odd photos

def test_every_frame_of_a_multi_page_tiff_and_an_animated_gif_is_restored(cli, files, tmp_path):
    odd = files["odd_images"]
    out = tmp_path / "out"
    code, text, new = cli(["restore", odd["multi_page_tiff"], odd["animated_gif"],
                           "--out", out, *FAST], out)
    assert code == 0 and "7 of 7 written" in text
    assert sorted(p.name for p in new) == [
        "animated_frame1.png", "animated_frame2.png", "animated_frame3.png", "animated_frame4.png",
        "pages_frame1.png", "pages_frame2.png", "pages_frame3.png"]
    pages = [np.asarray(Image.open(out / f"pages_frame{i}.png")) for i in (1, 2, 3)]
    assert not np.array_equal(pages[0], pages[1])            # each page is its own
    code, text, new = cli(["restore", odd["animated_png"], "--out", tmp_path / "apng", *FAST],
                          tmp_path / "apng")
    assert code == 0 and len(new) == 2


def test_frames_of_two_inputs_that_share_a_name_are_refused_up_front(cli, files, tmp_path):
    odd = files["odd_images"]
    code, text, _ = cli(["restore", odd["animated_gif"], odd["animated_png"],
                         "--out", tmp_path / "out", *FAST])
    assert code == 2 and "would both be written" in text


def test_damage_writes_every_frame_too(cli, files, tmp_path):
    out = tmp_path / "out"
    code, text, new = cli(["damage", files["odd_images"]["multi_page_tiff"], "--out", out,
                           "--masks", "--quiet"], out)
    assert code == 0 and len(new) == 6 and (out / "pages_frame3_mask.png").exists()


@pytest.mark.parametrize("command", ["evaluate", "invert"])
def test_single_image_commands_refuse_a_multi_frame_file_clearly(files, command):
    from repair.images import ImageError, load_gray

    with pytest.raises(ImageError, match="holds 3 frames.*split it first"):
        load_gray(files["odd_images"]["multi_page_tiff"])    # what evaluate and invert read


@pytest.mark.parametrize("case", ["mode_f_tiff", "mode_f_nan_inf", "mode_i_32bit", "png_16bit",
                                  "rgba", "cmyk_jpeg", "palette_transparency", "png_named_jpg",
                                  "unicode_name", "exif_rotated"])
def test_unusual_but_valid_photos_are_restored(cli, files, tmp_path, case):
    out = tmp_path / "out"
    path = files["odd_images"][case]
    code, text, new = cli(["restore", path, "--out", out, *FAST], out)
    assert code == 0, text
    img = Image.open(new[0])
    source = Image.open(path)
    if case == "exif_rotated":
        assert img.size == source.size[::-1]
    else:
        assert img.size == source.size
    if case.startswith("mode_f"):
        assert img.mode.startswith("I")                 # PNG holds no floats: 16-bit
        assert np.asarray(img).max() > 1000


# ---------------------------------------------------------------- the output policy

@pytest.mark.parametrize("command", ["restore", "damage"])
def test_a_file_already_in_out_is_never_replaced_without_overwrite(cli, tmp_path, command):
    src = photos(tmp_path / "in")
    out = tmp_path / "out"
    out.mkdir()
    (out / "p1.png").write_bytes(b"an original, not a result")
    extra = FAST if command == "restore" else ["--quiet"]
    code, text, _ = cli([command, src, "--out", out, *extra])
    assert code == 2 and "p1.png already exist" in text and "--overwrite" in text
    assert (out / "p1.png").read_bytes() == b"an original, not a result"
    before = snapshot(tmp_path)
    assert main([command, str(src), "--out", str(out), *extra, "--overwrite"]) == 0
    assert snapshot(tmp_path)[out / "p1.png"] != before[out / "p1.png"]


def test_evaluate_json_already_there_needs_overwrite(cli, tmp_path):
    src = photos(tmp_path / "in")
    target = tmp_path / "results.json"
    target.write_text("{}")
    code, text, _ = cli(["evaluate", "--clean", src, "--methods", "damaged", "--size", "32",
                         "--json", target, "--no-progress"])
    assert code == 2 and "already exists" in text and "--overwrite" in text
    assert "PSNR" not in text                              # refused before evaluating


@pytest.mark.parametrize("command", ["restore", "damage"])
def test_photo_and_mask_names_that_collide_are_refused_up_front(cli, tmp_path, command):
    src = tmp_path / "in"
    corpus.good_photo(src / "a.png")
    corpus.good_photo(src / "a_mask.png")
    extra = ["--model", "median-clahe", "--quiet"] if command == "restore" else ["--quiet"]
    code, text, _ = cli([command, src, "--out", tmp_path / "out", "--masks", *extra])
    assert code == 2 and "would both be written" in text


def test_two_inputs_with_one_output_name_are_refused(cli, tmp_path):
    corpus.good_photo(tmp_path / "in" / "a.png")
    Image.open(tmp_path / "in" / "a.png").save(tmp_path / "in" / "a.jpg")
    code, text, _ = cli(["restore", tmp_path / "in", "--out", tmp_path / "out", *FAST])
    assert code == 2 and "would both be written" in text


def test_a_folder_where_an_output_goes_is_refused(cli, tmp_path):
    src = photos(tmp_path / "in", 1)
    (tmp_path / "out" / "p0.png").mkdir(parents=True)
    code, text, _ = cli(["restore", src, "--out", tmp_path / "out", *FAST])
    assert code == 2 and "is a folder" in text


@pytest.mark.parametrize("command", ["restore", "damage"])
def test_outputs_over_inputs_are_refused(cli, tmp_path, command):
    src = photos(tmp_path / "in")
    extra = FAST if command == "restore" else ["--quiet"]
    code, text, _ = cli([command, src, "--out", src, *extra])
    assert code == 2 and "overwrite an input" in text


def test_temporary_files_of_a_killed_write_are_cleaned_on_the_next_run(cli, tmp_path):
    src = photos(tmp_path / "in", 1)
    out = tmp_path / "out"
    out.mkdir()
    stale = out / ".p0.png.abc123.tmp"
    stale.write_bytes(b"half a PNG")
    os.utime(stale, (0, 0))                                    # long ago
    before = snapshot(tmp_path)
    assert main(["restore", str(src), "--out", str(out), *FAST]) == 0
    assert not stale.exists() and (out / "p0.png").exists()
    assert all(p == stale or snapshot(tmp_path).get(p) == d for p, d in before.items())


# ---------------------------------------------------------------- options checked up front

OUT_CASES = {"a_file": "is a file, not a folder", "empty": "is empty",
             "under_a_file": "is a file, not a folder", "read_only": "cannot write there"}


def _out(tmp_path: Path, case: str) -> str:
    (tmp_path / "plain.txt").write_text("a file")
    return {"a_file": str(tmp_path / "plain.txt"), "empty": "",
            "under_a_file": str(tmp_path / "plain.txt" / "sub"),
            "read_only": "/proc/repair-cannot-write-here"}[case]   # read-only even for root


@pytest.mark.parametrize("command", ["restore", "damage", "train"])
@pytest.mark.parametrize("case", sorted(OUT_CASES))
def test_a_bad_out_folder_is_refused_before_anything_runs(cli, tmp_path, command, case):
    if case == "read_only" and not Path("/proc/self").is_dir():
        pytest.skip("needs Linux's read-only /proc (chmod does not stop root)")
    out = _out(tmp_path, case)
    if command == "train":
        argv = ["train", "--profile", "tiny", "--out", out, "--quiet"]
    else:
        argv = [command, photos(tmp_path / "in"), "--out", out,
                *(FAST if command == "restore" else ["--quiet"])]
    code, text, _ = cli(argv)
    assert code == 2 and "--out" in text and OUT_CASES[case] in text


@pytest.mark.parametrize("argv,message", [
    (["--tile", "40"], "--tile 40: must be a multiple of 16"),
    (["--tile", "16"], "--tile 16"),
    (["--overlap", "-1"], "--overlap -1"),
    (["--overlap", "128"], "--overlap 128"),
    (["--device", "gpu0"], "gpu0"),
    (["--strength", "2"], "between 0 and 1"),
    (["--model", "no-such-model"], "unknown model"),
])
def test_restore_options_are_checked_before_any_model_loads(cli, tmp_path, monkeypatch, argv,
                                                            message):
    import repair.restore

    monkeypatch.setattr(repair.restore, "as_restorer", lambda *a, **k: pytest.fail("loaded"))
    code, text, _ = cli(["restore", photos(tmp_path / "in"), "--out", tmp_path / "out",
                         "--quiet", *argv])
    assert code == 2 and message in text


def test_masks_from_a_restorer_without_a_mask_head_is_refused_before_any_photo(cli, tmp_path):
    code, text, _ = cli(["restore", photos(tmp_path / "in"), "--out", tmp_path / "out",
                         "--masks", *FAST])
    assert code == 2 and "--masks needs a restorer" in text


@pytest.mark.parametrize("argv,message", [
    (["--seed", "-1"], "--seed must be a whole number, 0 or more"),
    (["--blur", "1.5"], "between 0 and 1"),
    (["--cracks", "nan"], "between 0 and 1"),
])
def test_damage_options_are_checked_up_front(cli, tmp_path, argv, message):
    code, text, _ = cli(["damage", photos(tmp_path / "in"), "--out", tmp_path / "out",
                         "--quiet", *argv])
    assert code == 2 and message in text


def test_missing_and_empty_inputs(cli, tmp_path):
    code, text, _ = cli(["restore", tmp_path / "nowhere", "--out", tmp_path / "out", *FAST])
    assert code == 2 and "no such file or folder" in text
    (tmp_path / "empty").mkdir()
    code, text, _ = cli(["damage", tmp_path / "empty", "--out", tmp_path / "out", "--quiet"])
    assert code == 2 and "no images found" in text


# ---------------------------------------------------------------- checkpoints

CHECKPOINT_MESSAGES = {
    "missing_generator": "generator is missing", "generator_not_a_table": "generator is missing",
    "missing_state_dict": "generator is missing", "unknown_arch": "unknown architecture",
    "unknown_hparam": "unknown hyper-parameter(s) flux_capacitor",
    "absurd_hparam": "ngf=4000000 is outside", "absurd_depth": "depth=10000 is outside",
    "hparam_wrong_type": "should be whole number", "hparam_nan": "ngf=nan is out of range",
    "wrong_shape": "has shape (3, 3), expected", "missing_weight": "missing inc",
    "extra_weight": "unexpected surprise", "weight_not_tensor": "has shape list",
    "nan_weights": "NaN or infinite", "inf_weights": "NaN or infinite",
    "state_dict_a_list": "no table of weights", "text_file": "damaged or incomplete",
    "empty_file": "damaged or incomplete", "truncated": "damaged or incomplete",
    "foreign_state_dict": "not a checkpoint of repair.train",
    "pickled_code": "not a checkpoint this tool can trust", "future_version": "newer than",
}


@pytest.mark.parametrize("case", sorted(CHECKPOINT_MESSAGES))
def test_restore_refuses_a_malformed_checkpoint_before_any_photo(cli, files, tmp_path, case):
    path = files["bad_checkpoints"][case]
    code, text, _ = cli(["restore", photos(tmp_path / "in"), "--out", tmp_path / "out",
                         "--checkpoint", path, "--quiet"])
    assert code == 2 and CHECKPOINT_MESSAGES[case] in text and str(path) in text
    assert "weights_only" not in text and "Traceback" not in text


@pytest.mark.parametrize("case", ["pickled_code", "nan_weights", "absurd_hparam", "wrong_shape",
                                  "missing_generator", "text_file"])
def test_train_init_refuses_a_malformed_checkpoint_before_loading_data(cli, files, tmp_path, case):
    code, text, _ = cli(["train", "--recipe", "pix2pix", "--profile", "tiny", "--out",
                         tmp_path / "run", "--init", files["bad_checkpoints"][case], "--quiet"])
    assert code == 2 and CHECKPOINT_MESSAGES[case] in text and "weights_only" not in text


@pytest.fixture(scope="module")
def last_pt(tmp_path_factory) -> Path:
    """A real full training state (the l1 recipe, one step)."""
    out = tmp_path_factory.mktemp("run")
    assert main(["train", "--recipe", "pix2pix", "--profile", "tiny", "--out", str(out),
                 "--max-steps", "1", "--image-size", "32", "--batch-size", "2", "--workers", "0",
                 "--quiet"]) == 0
    return out / "last.pt"


@pytest.mark.parametrize("case,message", [
    ("release_not_full", "cannot resume training"), ("missing_opt_G", "'opt_G' entry"),
    ("malformed_opt_G", "'opt_G' optimiser state is malformed"),
    ("negative_step", "'global_step' entry"), ("missing_rng", "'rng' entry"),
    ("discriminator_wrong_shape", "discriminator: weight"),
])
def test_resume_refuses_a_malformed_training_state(cli, last_pt, tmp_path, case, message):
    bad = corpus.bad_training_states(tmp_path / "states", last_pt)[case]
    code, text, _ = cli(["train", "--recipe", "pix2pix", "--profile", "tiny", "--out",
                         bad.parent, "--resume", "--max-steps", "2", "--image-size", "32",
                         "--batch-size", "2", "--workers", "0", "--quiet"])
    assert code == 2 and message in text and "Traceback" not in text


def test_evaluate_reports_a_bad_checkpoint_and_goes_on(cli, files, tmp_path):
    folder = tmp_path / "models"
    corpus.good_checkpoint(folder / "fine.pt")
    (folder / "broken.pt").write_bytes(files["bad_checkpoints"]["nan_weights"].read_bytes())
    code, text, _ = cli(["evaluate", "--clean", photos(tmp_path / "in"), "--checkpoints", folder,
                         "--methods", "damaged,fine,broken", "--size", "32", "--no-progress"])
    assert code == 1
    assert "fine" in text and "failed (checkpoint)" in text and "NaN or infinite" in text


def test_evaluate_reports_a_bad_photo_and_goes_on(cli, files, tmp_path):
    src = photos(tmp_path / "in")
    (src / "zz.png").write_bytes(files["bad_images"]["truncated_png"].read_bytes())
    out = tmp_path / "res.json"
    code, text, new = cli(["evaluate", "--clean", src, "--methods", "damaged", "--size", "32",
                           "--json", out, "--no-progress"], tmp_path)
    assert code == 1 and "2 images" in text and "failed (photo)" in text and "zz.png" in text
    assert new == [out]


@pytest.mark.parametrize("argv,message", [
    (["--json", "{tmp}"], "is a folder"), (["--json", ""], "--json is empty"),
    (["--json", "{tmp}/plain.txt/r.json"], "is a file, not a folder"),
    (["--seed", "-1"], "--seed -1"), (["--limit", "0"], "--limit 0"), (["--size", "8"], "--size 8"),
    (["--device", "gpu0"], "gpu0"), (["--methods", "magic"], "unknown method 'magic'"),
    (["--clean", "{tmp}/nowhere"], "no such file"), (["--clean", "{tmp}/empty"], "no images"),
])
def test_evaluate_options_are_checked_before_evaluating(cli, tmp_path, argv, message):
    (tmp_path / "plain.txt").write_text("a file")
    (tmp_path / "empty").mkdir()
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    base = ["evaluate", "--clean", photos(tmp_path / "in"), "--methods", "damaged", "--size", "32",
            "--no-progress"]
    code, text, _ = cli(base + argv)
    assert code == 2 and message in text and "PSNR" not in text


# ---------------------------------------------------------------- train

@pytest.mark.parametrize("argv,message", [
    (["--epochs", "0"], "--epochs 0"), (["--batch-size", "0"], "--batch-size 0"),
    (["--max-steps", "0"], "--max-steps 0"), (["--image-size", "4"], "--image-size 4"),
    (["--workers", "-1"], "--workers -1"), (["--lr", "0"], "--lr 0"), (["--lr", "nan"], "--lr nan"),
    (["--seed", "-2"], "--seed -2"), (["--threads", "0"], "--threads 0"),
    (["--save-every", "0"], "--save-every 0"), (["--time-limit", "-5"], "--time-limit -5"),
    (["--scale", "1", "0.5"], "--scale 1.0 0.5"), (["--data", "{tmp}/nowhere"], "--data"),
    (["--single-share", "1.5"], "--single-share 1.5"), (["--single-share", "nan"], "--single-share"),
    (["--decoy-share", "-0.2"], "--decoy-share -0.2"), (["--clean-share", "2"], "--clean-share 2"),
    (["--mask-pos-weight", "0"], "--mask-pos-weight 0"), (["--min-side", "-1"], "--min-side -1"),
    (["--device", "gpu0"], "gpu0"), (["--init", "{tmp}/missing.pt"], "no such checkpoint"),
])
def test_train_options_are_checked_before_anything_loads(cli, tmp_path, argv, message):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code, text, _ = cli(["train", "--recipe", "pix2pix", "--profile", "tiny", "--out",
                         tmp_path / "run", "--quiet", *argv])
    assert code == 2 and message in text


def test_train_refuses_to_start_afresh_over_a_run(cli, last_pt):
    code, text, _ = cli(["train", "--profile", "tiny", "--out", last_pt.parent, "--quiet"])
    assert code == 2 and "already holds a training run" in text and "--resume" in text


TRAIN = ["train", "--recipe", "pix2pix", "--profile", "tiny", "--image-size", "32",
         "--batch-size", "2", "--workers", "0", "--max-steps", "50", "--time-limit", "1000",
         "--quiet"]


class _CtrlC:
    """Stands in for TimeLimit: sends ``times`` SIGINTs to this process at step 1."""

    times = 1

    def __init__(self, seconds):
        pass

    def on_step(self, state, logs):
        if state.global_step == 1:
            for _ in range(self.times):
                os.kill(os.getpid(), signal.SIGINT)

    def on_epoch_end(self, state, logs):
        pass

    def on_train_end(self, state):
        pass


def test_ctrl_c_before_the_first_save_saves_a_resumable_state(cli, tmp_path, monkeypatch):
    import repair.train_cli

    monkeypatch.setattr(repair.train_cli, "TimeLimit", _CtrlC)
    out = tmp_path / "run"
    code, text, new = cli([*TRAIN, "--out", out], out)
    assert code == 0 and "stopped early at step 1" in text and "--resume" in text
    from repair.checkpoint import read_checkpoint

    assert read_checkpoint(out / "last.pt")["global_step"] == 1


def test_a_second_ctrl_c_says_plainly_that_nothing_was_saved(cli, tmp_path, monkeypatch):
    import repair.train_cli

    class Twice(_CtrlC):
        times = 2

    monkeypatch.setattr(repair.train_cli, "TimeLimit", Twice)
    out = tmp_path / "run"
    code, text, new = cli([*TRAIN, "--out", out], out)
    assert code == 130 and "nothing was saved" in text and "Ctrl-C once" in text
    assert not (out / "last.pt").exists()


@pytest.mark.skipif(os.name != "posix", reason="a terminal's Ctrl-C: SIGINT to a process group")
def test_ctrl_c_with_loader_workers_stops_once_saves_and_resumes(tmp_path):
    """A real ``repair train`` with 2 data-loading workers, and a Ctrl-C as a terminal sends it:
    SIGINT to the whole process group, workers included, mid-epoch. The run announces the stop
    once (not once more per worker), saves a resumable ``last.pt``, prints no traceback, and
    ``--resume`` continues from it."""
    import re
    import subprocess
    import sys
    import time

    from repair.checkpoint import read_checkpoint

    out, log = tmp_path / "run", tmp_path / "train.log"
    argv = ["train", "--recipe", "pix2pix", "--profile", "tiny", "--image-size", "32",
            "--batch-size", "1", "--threads", "1", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with open(log, "wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "repair", *argv, "--workers", "2",
                                 "--epochs", "1000", "--max-steps", "100000"],
                                stdout=sink, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)     # its own group, as in a terminal
        try:
            deadline = time.time() + 600
            while not re.search(rb"\|\s*[12]/4 ", log.read_bytes()):   # mid-epoch: workers up
                assert proc.poll() is None and time.time() < deadline, log.read_text()
                time.sleep(0.05)
            os.killpg(proc.pid, signal.SIGINT)
            code = proc.wait(timeout=300)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    text = log.read_text()
    assert code == 0 and "Traceback" not in text, text
    assert text.count("stopping after this step") == 1, text
    step = int(re.search(r"stopped early at step (\d+);.*--resume", text).group(1))
    assert read_checkpoint(out / "last.pt")["global_step"] == step
    assert main([*argv, "--workers", "0", "--max-steps", str(step + 1), "--resume",
                 "--quiet"]) == 0
    assert read_checkpoint(out / "last.pt")["global_step"] == step + 1


def test_a_killed_checkpoint_write_is_cleaned_on_the_next_run(tmp_path, last_pt):
    out = tmp_path / "run"
    out.mkdir()
    for name in ("last.pt", "history.json"):
        (out / name).write_bytes((last_pt.parent / name).read_bytes())
    stale = out / ".last.pt.x1y2z3.tmp"
    stale.write_bytes(b"half a checkpoint")
    os.utime(stale, (0, 0))
    assert main([*TRAIN[:-5], "--max-steps", "2", "--quiet", "--out", str(out), "--resume"]) == 0
    assert not stale.exists()


# ---------------------------------------------------------------- invert's generators

def _invert(files, tmp_path, generator):
    return ["invert", photos(tmp_path / "in", 1), "--out", tmp_path / "out", "--generator",
            generator, "--steps", "1,0,0", "--quiet"]


@pytest.mark.parametrize("kind,case,message", [
    ("odd_nvidia_pickles", "not_a_dict", "expected a dict"),
    ("odd_nvidia_pickles", "text_file", "not a readable stylegan2-ada-pytorch pickle"),
    ("bad_stylegan_files", "wrong_shape", "expected (16, 4, 4)"),
])
def test_invert_refuses_an_unreadable_generator(cli, files, tmp_path, kind, case, message):
    code, text, _ = cli(_invert(files, tmp_path, files[kind][case]))
    assert code == 2 and message in text


@pytest.mark.parametrize("kind,case", [
    ("odd_nvidia_pickles", "type_error"), ("odd_nvidia_pickles", "recursion_error"),
    ("bad_stylegan_files", "nan_weights"), ("bad_stylegan_files", "unknown_config"),
    ("bad_stylegan_files", "pickled_code"),
])
def test_invert_refuses_a_malformed_generator_clearly(cli, files, tmp_path, kind, case):
    try:
        code, text, _ = cli(_invert(files, tmp_path, files[kind][case]))
    except Exception as err:            # a traceback instead of an answer
        pytest.fail(f"{type(err).__name__}: {err}")
    assert code == 2 and "weights_only" not in text


def test_the_schema_check_covers_stylegan_generators(files):
    """What load_stylegan should call: :func:`repair.checkpoint_check.check_network` and
    :func:`repair.checkpoint_check.foreign_file` refuse every malformed generator in the corpus."""
    import torch

    from repair import stylegan_io
    from repair.checkpoint_check import (CheckpointError, check_network, foreign_file,
                                         safe_torch_load)
    from repair.stylegan import StyleGAN2Generator

    read_nvidia = getattr(stylegan_io, "_read_nvidia")
    for case, path in files["odd_nvidia_pickles"].items():
        with pytest.raises(CheckpointError, match=str(path.name)):
            with foreign_file(path):
                read_nvidia(path, "G_ema")
    messages = {"nan_weights": "NaN or infinite", "unknown_config": "unknown hyper-parameter",
                "wrong_shape": r"has shape \(2,\)", "pickled_code": "can trust"}
    for case, path in files["bad_stylegan_files"].items():
        with pytest.raises(CheckpointError, match=messages[case]):
            payload = safe_torch_load(path)
            check_network(StyleGAN2Generator, payload["config"], payload["state_dict"], str(path))
    with pytest.raises(CheckpointError, match="limit"):                # terabytes, never built
        check_network(StyleGAN2Generator, {"resolution": 1024, "channel_base": 1 << 20,
                                           "channel_max": 4096}, {}, "huge")
    tiny = StyleGAN2Generator(16, 1, z_dim=16, w_dim=16, mapping_layers=2, channel_base=128,
                              channel_max=16)
    check_network(StyleGAN2Generator, tiny.config, tiny.state_dict(), "fine")   # passes
    assert isinstance(tiny.state_dict()["const"], torch.Tensor)


# ---------------------------------------------------------------- invert's output policy

@pytest.fixture
def tiny_generator(tmp_path) -> Path:
    """A 16x16 StyleGAN2 generator file: inverting a photo with it takes a fraction of a second."""
    import torch

    from repair.stylegan import StyleGAN2Generator
    from repair.stylegan_io import save_stylegan

    torch.manual_seed(0)
    net_G = StyleGAN2Generator(16, 1, z_dim=16, w_dim=16, mapping_layers=2, channel_base=128,
                               channel_max=16)
    return save_stylegan(net_G, tmp_path / "tiny-G.pt")


@pytest.fixture
def no_generator(monkeypatch):
    """Fails the test if ``repair invert`` resolves (loads or downloads) its generator."""
    import repair.inversion

    monkeypatch.setattr(repair.inversion, "resolve_generator",
                        lambda *a, **k: pytest.fail("the generator was resolved"))
    monkeypatch.setattr("repair.invert_cli.resolve_generator",
                        lambda *a, **k: pytest.fail("the generator was resolved"))


@pytest.mark.parametrize("save_phases,existing", [(False, "p1.png"), (True, "p0_wplus.png")])
def test_invert_never_replaces_a_file_in_out_without_overwrite(cli, tmp_path, tiny_generator,
                                                               monkeypatch, save_phases, existing):
    import repair.invert_cli

    src = photos(tmp_path / "in")
    out = tmp_path / "out"
    out.mkdir()
    (out / existing).write_bytes(b"an original, not a result")
    argv = ["invert", src, "--out", out, "--generator", tiny_generator, "--steps", "1,1,1",
            "--quiet", *(["--save-phases"] if save_phases else [])]
    real = repair.invert_cli.resolve_generator
    with monkeypatch.context() as patch:   # refused before the generator is touched
        patch.setattr(repair.invert_cli, "resolve_generator",
                      lambda *a, **k: pytest.fail("the generator was resolved"))
        code, text, _ = cli(argv)
    assert code == 2 and f"{existing} already exist" in text and "--overwrite" in text
    assert (out / existing).read_bytes() == b"an original, not a result"
    assert repair.invert_cli.resolve_generator is real
    assert main([str(a) for a in argv] + ["--overwrite"]) == 0
    assert (out / existing).read_bytes() != b"an original, not a result"
    assert len(list(out.iterdir())) == (8 if save_phases else 2)


@pytest.mark.parametrize("case", sorted(OUT_CASES))
def test_invert_refuses_a_bad_out_folder_before_the_generator(cli, tmp_path, no_generator, case):
    if case == "read_only" and not Path("/proc/self").is_dir():
        pytest.skip("needs Linux's read-only /proc (chmod does not stop root)")
    code, text, _ = cli(["invert", photos(tmp_path / "in"), "--out", _out(tmp_path, case),
                         "--generator", "no-such-generator", "--quiet"])
    assert code == 2 and "--out" in text and OUT_CASES[case] in text
    assert "no-such-generator" not in text


def test_invert_refuses_outputs_over_inputs_before_the_generator(cli, tmp_path, no_generator):
    src = photos(tmp_path / "in")
    code, text, _ = cli(["invert", src, "--out", src, "--generator", "no-such-generator",
                         "--quiet"])
    assert code == 2 and "overwrite an input" in text


def test_invert_refuses_phase_files_that_collide_before_the_generator(cli, tmp_path,
                                                                      no_generator):
    src = tmp_path / "in"
    corpus.good_photo(src / "a.png")
    corpus.good_photo(src / "a_w.png")           # a's W-phase file would land on a_w's result
    code, text, _ = cli(["invert", src, "--out", tmp_path / "out", "--save-phases",
                         "--generator", "no-such-generator", "--quiet"])
    assert code == 2 and "would both be written" in text
