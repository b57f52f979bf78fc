"""repair.train: the recipes, one step per network, fit, history files, the command line."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pytest
import torch

from repair.data import PairedDataset
from repair.nets import REAL
from repair.history import plot_history, read_history, write_history
from repair.recipes import RECIPES, get_recipe
from repair.sampler import EpochSampler
from repair.device import pick_device
from repair.train import Callback, adversarial_loss, fit, new_state, update_D, update_G, validate
from repair.train_cli import run_train
from repair.train_options_cli import add_train_arguments

SIZE = 32


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny networks run fastest on one thread (and do not fight other work for the cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def photos(n: int = 6, size: int = 48) -> list[torch.Tensor]:
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    out = []
    for i in range(n):
        base = 0.7 * np.sin((3 + i) * xx) * np.cos((2 + i) * yy)
        base = base + 0.1 * rng.standard_normal((size, size))
        out.append(torch.from_numpy(np.clip(base, -1, 1).astype(np.float32))[None])
    return out


def datasets(n: int = 6) -> tuple[PairedDataset, PairedDataset]:
    return (PairedDataset(photos(n), SIZE, train=True, seed=0),
            PairedDataset(photos(2), SIZE, train=False, seed=0))


def small_state(recipe: str = "paper", seed: int = 0):
    return new_state(recipe, ngf=4, ndf=8, image_size=SIZE, seed=seed)


def batch(b: int = 2):
    train_ds, _ = datasets()
    items = [train_ds[i] for i in range(b)]
    return torch.stack([c for c, _, _ in items]), torch.stack([d for _, d, _ in items])


def params(net) -> list[torch.Tensor]:
    return [p.detach().clone() for p in net.parameters()]


def test_paper_recipe_is_section_II_D():
    r = get_recipe("paper")
    assert (r.lr, r.betas, r.batch_size, r.num_epochs) == (1e-4, (0.5, 0.999), 4, 10)
    assert (r.generator, r.discriminator, r.d_head) == ("paper-generator", "paper-discriminator",
                                                         "softmax")
    assert r.l1_weight == 1.0 and r.adv_weight == 1.0 and r.g_first and r.best_by == "val_loss"
    p2p = get_recipe("pix2pix")
    assert (p2p.generator, p2p.discriminator, p2p.l1_weight, p2p.lr) == ("unet", "patch", 100.0,
                                                                          2e-4)
    assert not p2p.g_first
    assert get_recipe("l1").discriminator is None
    assert get_recipe("paper-logit").d_head == "logit"
    assert get_recipe("paper", lr=3e-4).lr == 3e-4 and RECIPES["paper"].lr == 1e-4
    with pytest.raises(ValueError, match="unknown recipe"):
        get_recipe("cyclegan")


def test_softmax_head_is_fed_to_bce_with_logits_as_in_the_paper():
    state = small_state("paper")
    probs = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]])
    loss = adversarial_loss(probs, True, state.net_D)
    expected = torch.nn.functional.softplus(-probs[:, REAL]).mean()  # -log sigmoid(p)
    assert torch.isclose(loss, expected)
    # the implied D(x) = sigmoid(p) never leaves [0.5, 0.731]: a perfect D still pays 0.313
    assert adversarial_loss(torch.tensor([[0.0, 1.0]]), True, state.net_D).item() == \
        pytest.approx(math.log1p(math.exp(-1)), abs=1e-6)
    logit_state = small_state("paper-logit")
    assert adversarial_loss(torch.tensor([[20.0]]), True, logit_state.net_D).item() < 1e-6


@pytest.mark.parametrize("recipe", ["paper", "pix2pix"])
def test_update_D_moves_only_D(recipe):
    state = small_state(recipe)
    x_clean, x_damaged = batch()
    before_G, before_D = params(state.net_G), params(state.net_D)
    x_fake = state.net_G(x_damaged)
    logs = update_D(state.net_D, state.opt_D, x_damaged, x_clean, x_fake)
    assert logs["loss_D"] == pytest.approx((logs["loss_D_real"] + logs["loss_D_fake"]) / 2)
    assert all(torch.equal(a, b) for a, b in zip(before_G, params(state.net_G)))
    assert any(not torch.equal(a, b) for a, b in zip(before_D, params(state.net_D)))
    assert all(p.grad is None for p in state.net_G.parameters())


@pytest.mark.parametrize("recipe", ["paper", "paper-logit", "pix2pix", "l1"])
def test_update_G_freezes_D(recipe):
    state = small_state(recipe)
    x_clean, x_damaged = batch()
    before_G = params(state.net_G)
    before_D = params(state.net_D) if state.net_D is not None else []
    x_restored, logs = update_G(state.net_G, state.net_D, state.opt_G, x_damaged, x_clean,
                                state.recipe)
    assert x_restored.shape == x_clean.shape
    r = state.recipe
    assert logs["loss_G"] == pytest.approx(r.l1_weight * logs["loss_G_l1"]
                                           + r.adv_weight * logs["loss_G_adv"], rel=1e-5)
    assert any(not torch.equal(a, b) for a, b in zip(before_G, params(state.net_G)))
    if state.net_D is not None:
        assert all(torch.equal(a, b) for a, b in zip(before_D, params(state.net_D)))
        assert all(p.grad is None and p.requires_grad for p in state.net_D.parameters())
        assert logs["loss_G_adv"] > 0
    else:
        assert logs["loss_G_adv"] == 0


def test_epoch_sampler_shards_cover_everything_and_skip_resumes():
    full = EpochSampler(10, seed=3)
    full.set_epoch(2)
    order = list(full)
    assert sorted(order) == list(range(10))
    full.set_epoch(3)
    assert list(full) != order                               # a new order every epoch
    shards = []
    for rank in range(3):
        s = EpochSampler(10, seed=3, rank=rank, world=3)
        s.set_epoch(2)
        shards.append(list(s))
    assert {len(s) for s in shards} == {4} and set(sum(shards, [])) == set(range(10))
    full.set_epoch(2, skip=4)
    assert list(full) == order[4:] and len(full) == 6


class Recorder(Callback):
    def __init__(self):
        self.steps, self.epochs, self.ended = 0, [], False

    def on_step(self, state, logs):
        self.steps += 1

    def on_epoch_end(self, state, logs):
        self.epochs.append(logs)

    def on_train_end(self, state):
        self.ended = True


@pytest.mark.parametrize("recipe", ["paper", "pix2pix", "l1"])
def test_fit_runs_epochs_records_history_and_keeps_best(recipe):
    train_ds, val_ds = datasets()
    state = small_state(recipe)
    rec = Recorder()
    fit(state, train_ds, val_ds, num_epochs=2, batch_size=4, callbacks=[rec], progress=False)
    assert (state.epoch, state.step_in_epoch, state.global_step) == (2, 0, 4)  # ceil(6/4)=2 a epoch
    assert state.images_seen == 12 and rec.steps == 4 and rec.ended
    assert [e["epoch"] for e in state.history["epochs"]] == [1, 2]
    assert len(state.history["steps"]) == 4
    assert all(np.isfinite(row["loss_G"]) for row in state.history["steps"])
    assert ("loss_D" in state.history["steps"][0]) == (recipe != "l1")
    scores = state.history["epochs"][-1]
    assert {"val_loss", "val_l1", "val_psnr", "val_psnr_damaged"} <= set(scores)
    key = state.recipe.best_by
    values = [e[key] for e in state.history["epochs"]]
    assert state.best[key] == (max(values) if key == "val_psnr" else min(values))


def test_fit_stops_at_max_images_mid_epoch():
    train_ds, val_ds = datasets()
    state = small_state("l1")
    fit(state, train_ds, val_ds, num_epochs=5, batch_size=2, max_images=4, progress=False)
    assert (state.global_step, state.epoch, state.step_in_epoch, state.images_seen) == (2, 0, 2, 4)
    assert state.history["epochs"] == []


def test_validate_scores_the_damaged_input_too():
    _, val_ds = datasets()
    scores = validate(small_state("paper"), val_ds)
    assert scores["val_psnr_damaged"] > 10 and np.isfinite(scores["val_psnr"])
    assert scores["val_loss"] == pytest.approx(scores["val_l1"] + scores["val_adv"], rel=1e-5)


def test_history_files_and_plot(tmp_path):
    train_ds, val_ds = datasets()
    state = small_state("paper")
    fit(state, train_ds, val_ds, num_epochs=2, batch_size=4, progress=False)
    written = write_history(state.history, tmp_path)
    assert [p.name for p in written] == ["history.json", "steps.csv", "epochs.csv"]
    assert read_history(tmp_path) == json.loads(json.dumps(state.history))
    lines = (tmp_path / "steps.csv").read_text().splitlines()
    assert lines[0].startswith("step,epoch,") and len(lines) == 5
    fig = plot_history(state.history, title="paper", best_epoch=state.best["epoch"])
    assert len(fig.axes) == 4                                    # losses, loss_D, val, PSNR
    assert fig.axes[1].get_title() == "paper validation"
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_devices():
    assert pick_device("cpu").type == "cpu"
    assert pick_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            pick_device("cuda")


def parse(*argv: str) -> argparse.Namespace:
    return add_train_arguments(argparse.ArgumentParser()).parse_args(list(argv))


def test_run_train_from_the_command_line_and_resume(tmp_path, capsys):
    out = tmp_path / "run"
    common = ("--profile", "tiny", "--out", str(out), "--quiet", "--workers", "0", "--epochs", "5",
              "--image-size",
              "32", "--batch-size", "2")
    assert run_train(parse("--recipe", "pix2pix", "--max-steps", "1", *common)) == 0
    written = {p.name for p in out.iterdir()}
    assert {"last.pt", "history.json", "steps.csv", "summary.json"} <= written
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 1 and summary["images_seen"] == 2
    assert run_train(parse("--recipe", "pix2pix", "--max-steps", "3", "--resume", *common)) == 0
    history = read_history(out)
    assert [row["step"] for row in history["steps"]] == [1, 2, 3]
    assert json.loads((out / "summary.json").read_text())["steps"] == 3


def test_cli_rejects_unknown_recipe():
    with pytest.raises(SystemExit):
        parse("--recipe", "nope")


def test_time_limit_stops_after_the_current_step():
    from repair.callbacks import TimeLimit

    train_ds, _ = datasets()
    state = small_state("l1")
    fit(state, train_ds, None, num_epochs=3, batch_size=2, callbacks=[TimeLimit(0)],
        progress=False)
    assert state.global_step == 1 and state.step_in_epoch == 1


def test_paper_networks_keep_the_papers_widths():
    from repair.recipes import widths

    assert widths(get_recipe("paper"), 64, 64) == (32, 32)       # paper profile: still Figs. 3-4
    assert widths(get_recipe("paper"), 8, 8) == (8, 8)            # tiny: narrower is allowed
    assert widths(get_recipe("pix2pix"), 64, 64) == (64, 64)


def test_epoch_size_gives_a_fresh_subset_every_epoch():
    s = EpochSampler(10, seed=1, epoch_size=4)
    s.set_epoch(0)
    first = list(s)
    s.set_epoch(1)
    second = list(s)
    assert len(first) == len(second) == len(s) == 4 and first != second
    assert set(first) <= set(range(10))
    s.set_epoch(0, skip=2)
    assert list(s) == first[2:]
    with pytest.raises(ValueError, match="epoch_size"):
        EpochSampler(10, epoch_size=0)


def test_fit_with_epoch_size_validates_after_that_many_images():
    train_ds, val_ds = datasets(8)
    state = small_state("l1")
    fit(state, train_ds, val_ds, num_epochs=3, batch_size=2, epoch_size=4, progress=False)
    assert [e["images_seen"] for e in state.history["epochs"]] == [4, 8, 12]
    assert state.global_step == 6


def test_init_generator_fine_tunes_from_a_checkpoint_of_the_same_architecture(tmp_path):
    from repair.checkpoint import release_from, save_checkpoint
    from repair.callbacks import state_payload
    from repair.train_cli import init_generator

    donor = small_state("pix2pix", seed=1)
    save_checkpoint(tmp_path / "G.pt", release_from(state_payload(donor)))
    state = small_state("pix2pix", seed=2)
    init_generator(state, tmp_path / "G.pt")
    for a, b in zip(state.net_G.state_dict().values(), donor.net_G.state_dict().values()):
        assert torch.equal(a, b)
    assert state.settings["init"] == str(tmp_path / "G.pt")
    with pytest.raises(ValueError, match="same recipe"):
        init_generator(small_state("paper"), tmp_path / "G.pt")      # another generator


def test_command_line_fine_tunes_on_the_plate_mix(tmp_path):
    common = ("--profile", "tiny", "--quiet", "--workers", "0", "--image-size", "32",
              "--batch-size", "2", "--max-steps", "2", "--recipe", "pix2pix")
    assert run_train(parse(*common, "--out", str(tmp_path / "a"))) == 0
    assert run_train(parse(*common, "--out", str(tmp_path / "b"), "--mix", "daguerreotype",
                           "--init", str(tmp_path / "a" / "last.pt"), "--scale", "0.5", "1",
                           "--jitter", "--epoch-photos", "2", "--val-size", "48")) == 0
    from repair.checkpoint import read_checkpoint

    settings = read_checkpoint(tmp_path / "b" / "last.pt")["settings"]
    assert settings["mix"] == "daguerreotype" and settings["jitter"] and settings["epoch_photos"] == 2
    assert settings["init"] == str(tmp_path / "a" / "last.pt")
    with pytest.raises(SystemExit):
        parse("--mix", "sepia")


def test_cycle_labels_of_short_cycles_stay_apart_and_above_the_curves():
    """plot_rounds labels every later cycle at its start; two short cycles side by side (one of
    the restorer's had 7 rounds where another had 22) must not print over each other, and no
    label may sit on a curve."""
    import matplotlib
    matplotlib.use("Agg")
    from repair import history

    rounds, step = [], 0
    for cycle, count, level in ((1, 22, 27.5), (2, 6, 23.5), (3, 7, 27.0), (4, 6, 28.5)):
        for k in range(count):
            step += 100
            rounds.append({"step": step, "cycle": cycle, "val_psnr": level + 0.2 * k,
                           "val_psnr_damaged": level - 0.5, "val_mask_f1": 0.4})
    fig = history.plot_rounds({"steps": [], "epochs": rounds})
    right = fig.axes[1]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in right.texts]
    assert [t.get_text() for t in right.texts] == ["cycle 2", "cycle 3", "cycle 4"]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    highest = max(r["val_psnr"] for r in rounds)
    top_of_curves = right.transData.transform((0, highest))[1]
    assert all(box.y0 > top_of_curves for box in boxes)
