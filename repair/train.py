"""The training loop: one step for the discriminator, one for the generator, and ``fit``.

The recipes it runs (the paper's, pix2pix's and two ablations) are in :mod:`repair.recipes`;
loss-history files and plots in :mod:`repair.history`; the command line in
:mod:`repair.train_cli`: ``python -m repair.train --recipe paper`` (also ``repair train``), or
several processes with ``torchrun --nproc_per_node N -m repair.train ...``
(DistributedDataParallel). Names from those modules are importable from here too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from repair.checkpoint import (load_net, net_record, read_checkpoint, rng_state, save_checkpoint,
                               set_rng_state, release_from)
from repair.history import plot_history, read_history, write_history
from repair.recipes import RECIPES, Recipe, build_nets, get_recipe, make_optimizers, widths

__all__ = [
    "Recipe", "RECIPES", "get_recipe", "widths", "build_nets", "make_optimizers",
    "adversarial_loss",
    "update_D", "update_G", "train_step", "TrainState", "new_state", "EpochSampler",
    "make_train_loader",
    "validate", "fit", "Callback", "HistoryWriter", "Checkpointer", "TimeLimit", "state_payload",
    "save_state", "load_state", "write_history", "read_history", "plot_history", "pick_device",
    "main",
]


# ---------------------------------------------------------------- one step per network


def _plain(module: nn.Module) -> nn.Module:
    return getattr(module, "module", module)


def adversarial_loss(scores: torch.Tensor, real: bool, net_D: nn.Module) -> torch.Tensor:
    """``BCEWithLogitsLoss`` of the discriminator's scores against "real" (1) or "fake" (0).

    A logit head (PatchGAN, fixed paper head) is scored as intended. The paper's softmax head
    returns probabilities ``(B, 2)``; as in the paper they go into ``BCEWithLogitsLoss`` as if they
    were logits, reading column :data:`repair.nets.REAL` as "real" - the sigmoid of a probability
    lies in [0.5, 0.73], which is why that loss barely moves (chapter 02).
    """
    from repair.nets import REAL

    if not getattr(_plain(net_D), "returns_logits", False):
        scores = scores[:, REAL]                             # (B,) probabilities used as logits
    scores = scores.float()
    target = torch.ones_like(scores) if real else torch.zeros_like(scores)
    return F.binary_cross_entropy_with_logits(scores, target)


def _autocast(device: torch.device, amp: bool):
    """bfloat16 autocast on CUDA when ``amp`` (no loss scaling needed), else a no-op."""
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def update_D(net_D: nn.Module, opt_D: torch.optim.Optimizer, x_damaged: torch.Tensor,
             x_clean: torch.Tensor, x_fake: torch.Tensor, amp: bool = False) -> dict[str, float]:
    """One optimiser step of the discriminator: loss_D = (loss on real + loss on fake) / 2.

    Args:
        x_damaged: (B, 1, H, W) inputs (the conditional PatchGAN sees them; the paper's D not).
        x_clean: (B, 1, H, W) real photos.
        x_fake: (B, 1, H, W) generator outputs; detached here so G gets no gradient.
    """
    opt_D.zero_grad(set_to_none=True)
    with _autocast(x_clean.device, amp):
        loss_real = adversarial_loss(net_D(x_damaged, x_clean), True, net_D)
        loss_fake = adversarial_loss(net_D(x_damaged, x_fake.detach()), False, net_D)
        loss_D = (loss_real + loss_fake) / 2
    loss_D.backward()
    opt_D.step()
    return {"loss_D": loss_D.item(), "loss_D_real": loss_real.item(),
            "loss_D_fake": loss_fake.item()}


def update_G(net_G: nn.Module, net_D: nn.Module | None, opt_G: torch.optim.Optimizer,
             x_damaged: torch.Tensor, x_clean: torch.Tensor, recipe: Recipe,
             x_restored: torch.Tensor | None = None, amp: bool = False
             ) -> tuple[torch.Tensor, dict[str, float]]:
    """One optimiser step of the generator with the discriminator frozen.

    loss_G = adv_weight * BCE(D(G(x_damaged)), "real") + l1_weight * |G(x_damaged) - x_clean|.

    Args:
        x_damaged, x_clean: (B, 1, H, W) in [-1, 1].
        recipe: the loss weights.
        x_restored: G's output if already computed (pix2pix computes it before D's step).

    Returns:
        ``(x_restored, losses)``: the output (still attached to G's graph) and the loss values.
    """
    opt_G.zero_grad(set_to_none=True)
    with _autocast(x_clean.device, amp):
        if x_restored is None:
            x_restored = net_G(x_damaged)                    # (B, 1, H, W)
        loss_l1 = F.l1_loss(x_restored.float(), x_clean)
        loss_G = recipe.l1_weight * loss_l1
        loss_adv = torch.zeros(())
        if net_D is not None:
            plain_D = _plain(net_D)                          # no DDP sync: D does not step here
            plain_D.requires_grad_(False)                    # frozen: gradients flow only to G
            try:
                loss_adv = adversarial_loss(plain_D(x_damaged, x_restored), True, plain_D)
            finally:
                plain_D.requires_grad_(True)
            loss_G = loss_G + recipe.adv_weight * loss_adv
    loss_G.backward()
    opt_G.step()
    return x_restored, {"loss_G": loss_G.item(), "loss_G_adv": loss_adv.item(),
                        "loss_G_l1": loss_l1.item()}


def train_step(state: "TrainState", x_clean: torch.Tensor, x_damaged: torch.Tensor,
               amp: bool = False) -> dict[str, float]:
    """One batch in the recipe's order: the paper steps G then D, pix2pix D then G.

    Args:
        x_clean, x_damaged: (B, 1, H, W) in [-1, 1] on the networks' device.
    """
    net_G, net_D, recipe = state.net_G, state.net_D, state.recipe
    logs: dict[str, float] = {}
    if recipe.g_first or net_D is None:                            # the paper: G, then D
        x_restored, logs_G = update_G(net_G, net_D, state.opt_G, x_damaged, x_clean, recipe,
                                      amp=amp)
        if net_D is not None:
            logs.update(update_D(net_D, state.opt_D, x_damaged, x_clean, x_restored, amp=amp))
    else:                                                          # pix2pix: D, then G
        with _autocast(x_clean.device, amp):
            x_restored = net_G(x_damaged)                          # (B, 1, H, W)
        logs.update(update_D(net_D, state.opt_D, x_damaged, x_clean, x_restored, amp=amp))
        _, logs_G = update_G(net_G, net_D, state.opt_G, x_damaged, x_clean, recipe,
                             x_restored=x_restored, amp=amp)
    logs.update(logs_G)
    return logs


# ---------------------------------------------------------------- state, data order, validation


@dataclass
class TrainState:
    """Everything that changes while training (and goes into a checkpoint)."""

    recipe: Recipe
    net_G: nn.Module
    net_D: nn.Module | None
    opt_G: torch.optim.Optimizer
    opt_D: torch.optim.Optimizer | None
    settings: dict[str, Any] = field(default_factory=dict)
    epoch: int = 0  # epochs completed
    step_in_epoch: int = 0  # batches done in the current epoch
    global_step: int = 0
    images_seen: int = 0
    history: dict[str, list] = field(default_factory=lambda: {"steps": [], "epochs": []})
    best: dict[str, Any] = field(default_factory=dict)
    stop: bool = False  # a callback sets this to end training after the current step


def new_state(recipe: Recipe | str, ngf: int, ndf: int, image_size: int,
              device: str | torch.device = "cpu", seed: int = 0, **settings: Any) -> TrainState:
    """Fresh networks and optimisers for a recipe (``settings`` are recorded in checkpoints)."""
    recipe = get_recipe(recipe)
    net_G, net_D = build_nets(recipe, ngf, ndf, image_size, device, seed)
    opt_G, opt_D = make_optimizers(recipe, net_G, net_D)
    settings = {"ngf": ngf, "ndf": ndf, "image_size": image_size, "seed": seed, **settings}
    return TrainState(recipe, net_G, net_D, opt_G, opt_D, settings)


class EpochSampler(Sampler[int]):
    """A seeded shuffle per epoch, sharded across processes, that can start mid-epoch.

    Epoch ``e`` visits ``randperm(n, seed=(seed, e))``; process ``rank`` of ``world`` takes every
    ``world``-th index (padded so all processes get the same count); ``skip`` drops the first
    indices of this process (resuming after ``skip / batch_size`` batches). With ``epoch_size``
    an epoch visits only the first ``epoch_size`` indices of its permutation: a fresh random
    subset of the data every epoch (shorter epochs, so more validations for the same images).
    """

    def __init__(self, n: int, seed: int = 0, rank: int = 0, world: int = 1,
                 epoch_size: int | None = None) -> None:
        if epoch_size is not None and epoch_size < 1:
            raise ValueError(f"epoch_size must be a positive number of items, got {epoch_size}")
        self.n, self.seed, self.rank, self.world = n, seed, rank, world
        self.size = n if epoch_size is None else min(n, epoch_size)  # items per epoch
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def _indices(self) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.n, generator=g).tolist()[:self.size]
        per_rank = math.ceil(self.size / self.world)
        order += order[:per_rank * self.world - self.size]   # pad to a multiple of world
        return order[self.rank::self.world]

    def __iter__(self) -> Iterator[int]:
        return iter(self._indices()[self.skip:])

    def __len__(self) -> int:
        return max(0, math.ceil(self.size / self.world) - self.skip)


def make_train_loader(dataset: Dataset, batch_size: int, num_workers: int = 0, seed: int = 0,
                      rank: int = 0, world: int = 1, epoch_size: int | None = None) -> DataLoader:
    """A loader whose order is :class:`EpochSampler`'s (call ``loader.sampler.set_epoch``)."""
    sampler = EpochSampler(len(dataset), seed, rank, world, epoch_size)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      drop_last=False, persistent_workers=False)


@torch.no_grad()
def validate(state: TrainState, val_ds: Dataset, batch_size: int = 16,
             device: str | torch.device = "cpu", amp: bool = False) -> dict[str, float]:
    """Validation scores of the generator: loss_G (as in training), L1, PSNR of output and input."""
    from repair.metrics import psnr

    device = torch.device(device)
    net_G, net_D = _plain(state.net_G), state.net_D and _plain(state.net_D)
    was_training = net_G.training
    net_G.eval()
    if net_D is not None:
        net_D.eval()
    sums = dict.fromkeys(("val_loss", "val_l1", "val_adv", "val_psnr", "val_psnr_damaged"), 0.0)
    count = 0
    for x_clean, x_damaged, _ in DataLoader(val_ds, batch_size=batch_size, shuffle=False):
        x_clean, x_damaged = x_clean.to(device), x_damaged.to(device)
        with _autocast(device, amp):
            x_restored = net_G(x_damaged).float()            # (B, 1, H, W)
            adv = adversarial_loss(net_D(x_damaged, x_restored), True, net_D).item() \
                if net_D is not None else 0.0
        l1 = F.l1_loss(x_restored, x_clean).item()
        b = len(x_clean)
        sums["val_l1"] += l1 * b
        sums["val_adv"] += adv * b
        sums["val_loss"] += (state.recipe.l1_weight * l1 + state.recipe.adv_weight * adv) * b
        sums["val_psnr"] += float(psnr(x_restored.cpu(), x_clean.cpu()).sum())
        sums["val_psnr_damaged"] += float(psnr(x_damaged.cpu(), x_clean.cpu()).sum())
        count += b
    net_G.train(was_training)
    if net_D is not None:
        net_D.train(was_training)
    return {k: v / max(count, 1) for k, v in sums.items()}


# ---------------------------------------------------------------- callbacks


class Callback:
    """Hooks that :func:`fit` calls; override the ones you need."""

    def on_step(self, state: TrainState, logs: dict[str, float]) -> None: ...

    def on_epoch_end(self, state: TrainState, logs: dict[str, float]) -> None: ...

    def on_train_end(self, state: TrainState) -> None: ...


def _improved(recipe: Recipe, logs: dict[str, float], best: dict[str, Any]) -> bool:
    if not best:
        return True
    key = recipe.best_by
    return logs[key] > best[key] if key == "val_psnr" else logs[key] < best[key]


def _any_process(flag: bool, device: torch.device) -> bool:
    """True if ``flag`` is True on any process of the group."""
    import torch.distributed as dist

    value = torch.tensor([float(flag)], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


# ---------------------------------------------------------------- the loop


def fit(state: TrainState, train_ds: Dataset, val_ds: Dataset | None = None,
        num_epochs: int | None = None, batch_size: int | None = None, max_steps: int | None = None,
        max_images: int | None = None, device: str | torch.device = "cpu", amp: bool = False,
        num_workers: int = 0, seed: int = 0, callbacks: Sequence[Callback] = (),
        progress: bool = True, rank: int = 0, world: int = 1,
        epoch_size: int | None = None) -> TrainState:
    """Train ``state``'s networks from where they stand (epoch, step) to ``num_epochs``.

    Args:
        train_ds: (x_clean, x_damaged, mask) triples with ``set_epoch`` (fresh damage per epoch).
        val_ds: scored after every epoch (:func:`validate`); the best epoch is recorded.
        num_epochs, batch_size: default to the recipe's (batch size per process).
        max_steps, max_images: stop after this many optimiser steps / training images in total.
        device, amp: where to train; ``amp`` = bfloat16 autocast on CUDA.
        callbacks: :class:`Callback` objects (history files, checkpoints, plots).
        progress: show a tqdm progress bar.
        rank, world: this process and the number of processes (DDP; the data is sharded).
        epoch_size: items per epoch, a fresh random subset each epoch (default: all of them).
    """
    from tqdm.auto import tqdm

    recipe, device = state.recipe, torch.device(device)
    num_epochs = recipe.num_epochs if num_epochs is None else num_epochs
    batch_size = batch_size or recipe.batch_size
    if max_images is not None:
        max_steps = min(max_steps or math.inf, math.ceil(max_images / (batch_size * world)))
    loader = make_train_loader(train_ds, batch_size, num_workers, seed, rank, world, epoch_size)
    batches_per_epoch = math.ceil(math.ceil(loader.sampler.size / world) / batch_size)
    nets = [n for n in (state.net_G, state.net_D) if n is not None]
    for net in nets:
        net.train()
    state.stop = False
    while state.epoch < num_epochs and (max_steps is None or state.global_step < max_steps) \
            and not state.stop:
        if hasattr(train_ds, "set_epoch"):
            train_ds.set_epoch(state.epoch)
        loader.sampler.set_epoch(state.epoch, skip=state.step_in_epoch * batch_size)
        bar = tqdm(loader, desc=f"{recipe.name} epoch {state.epoch + 1}/{num_epochs}",
                   disable=not progress or rank != 0, leave=False)
        for x_clean, x_damaged, _ in bar:
            x_clean = x_clean.to(device, non_blocking=True)            # (B, 1, H, W)
            x_damaged = x_damaged.to(device, non_blocking=True)        # (B, 1, H, W)
            logs = train_step(state, x_clean, x_damaged, amp)
            state.step_in_epoch += 1
            state.global_step += 1
            state.images_seen += len(x_clean) * world
            logs = {"step": state.global_step, "epoch": state.epoch + 1, **logs}
            state.history["steps"].append(logs)
            bar.set_postfix(loss_G=f"{logs['loss_G']:.3f}",
                            loss_D=f"{logs.get('loss_D', float('nan')):.3f}")
            for cb in callbacks:
                cb.on_step(state, logs)
            if world > 1:                                              # all processes stop together
                state.stop = _any_process(state.stop, device)
            if state.stop or (max_steps is not None and state.global_step >= max_steps):
                break
        bar.close()
        if state.step_in_epoch < batches_per_epoch:
            break                                                      # stopped mid-epoch
        state.epoch += 1
        state.step_in_epoch = 0
        epoch_logs: dict[str, Any] = {"epoch": state.epoch, "step": state.global_step,
                                      "images_seen": state.images_seen}
        if val_ds is not None:
            epoch_logs.update(validate(state, val_ds, device=device, amp=amp))
            if _improved(recipe, epoch_logs, state.best):
                state.best = dict(epoch_logs)
        state.history["epochs"].append(epoch_logs)
        if progress and rank == 0:
            tqdm.write(f"{recipe.name} epoch {state.epoch}: " + ", ".join(
                f"{k}={v:.4g}" for k, v in epoch_logs.items() if k.startswith("val")))
        for cb in callbacks:
            cb.on_epoch_end(state, epoch_logs)
    for cb in callbacks:
        cb.on_train_end(state)
    return state


# ---------------------------------------------------------------- checkpoints and history


def state_payload(state: TrainState) -> dict[str, Any]:
    """The full checkpoint of a training state (weights, optimisers, position, RNG, config)."""
    return {
        "kind": "full",
        "recipe": dataclasses.asdict(state.recipe),
        "settings": dict(state.settings),
        "generator": net_record(state.net_G),
        "discriminator": net_record(state.net_D) if state.net_D is not None else None,
        "opt_G": state.opt_G.state_dict(),
        "opt_D": state.opt_D.state_dict() if state.opt_D is not None else None,
        "epoch": state.epoch, "step_in_epoch": state.step_in_epoch,
        "global_step": state.global_step, "images_seen": state.images_seen,
        "rng": rng_state(),
        "history": state.history, "best": state.best,
    }


def save_state(state: TrainState, path: str | os.PathLike) -> Path:
    """Write a full checkpoint of ``state`` atomically (temporary file, then rename)."""
    return save_checkpoint(path, state_payload(state))


def _recipe_from(saved: dict[str, Any]) -> Recipe:
    saved = dict(saved)
    saved["betas"] = tuple(saved["betas"])
    return Recipe(**saved)


def load_state(path: str | os.PathLike, state: TrainState | None = None,
               device: str | torch.device = "cpu", restore_rng: bool = True) -> TrainState:
    """Resume from a full checkpoint: into ``state``'s objects (checked) or into new ones.

    Raises:
        repair.checkpoint.CheckpointError: damaged file, another program's file, a release
            (generator-only) checkpoint, or networks of another architecture.
    """
    from repair.checkpoint import CheckpointError

    payload = read_checkpoint(path)
    if payload.get("kind") != "full":
        raise CheckpointError(f"{path}: a generator-only release checkpoint cannot resume "
                              "training; load it with repair.checkpoint.load_generator")
    if state is None:
        s = payload["settings"]
        state = new_state(_recipe_from(payload["recipe"]), s["ngf"], s["ndf"], s["image_size"],
                          device, s.get("seed", 0),
                          **{k: v for k, v in s.items() if k not in ("ngf", "ndf", "image_size",
                                                                     "seed")})
    load_net(payload["generator"], state.net_G, "generator", device)
    if (payload["discriminator"] is None) != (state.net_D is None):
        raise CheckpointError(f"{path}: the checkpoint's recipe {payload['recipe']['name']!r} and "
                              f"this run's {state.recipe.name!r} differ in having a discriminator")
    if state.net_D is not None:
        load_net(payload["discriminator"], state.net_D, "discriminator", device)
        state.opt_D.load_state_dict(payload["opt_D"])
    state.opt_G.load_state_dict(payload["opt_G"])
    for key in ("epoch", "step_in_epoch", "global_step", "images_seen", "history", "best"):
        setattr(state, key, payload[key])
    state.settings.update(payload["settings"])
    if restore_rng:
        set_rng_state(payload["rng"])
    return state


class HistoryWriter(Callback):
    """Writes the loss history (JSON + CSV) to ``folder`` after every epoch and at the end."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)

    def on_epoch_end(self, state: TrainState, logs: dict[str, float]) -> None:
        write_history(state.history, self.folder)

    def on_train_end(self, state: TrainState) -> None:
        write_history(state.history, self.folder)


class TimeLimit(Callback):
    """Ends training (after the current step, checkpoints written) once ``seconds`` have passed."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.time() + seconds

    def on_step(self, state: TrainState, logs: dict[str, float]) -> None:
        if time.time() >= self.deadline:
            state.stop = True


class Checkpointer(Callback):
    """Saves ``last.pt`` (full) every epoch and every ``every`` steps, ``epoch_NN.pt`` if asked,
    ``best.pt`` when the validation score improves, and ``G_best.pt`` (generator only)."""

    def __init__(self, folder: str | os.PathLike, every: int | None = None,
                 keep_epochs: bool = False) -> None:
        self.folder, self.every, self.keep_epochs = Path(folder), every, keep_epochs

    def on_step(self, state: TrainState, logs: dict[str, float]) -> None:
        if self.every and state.global_step % self.every == 0:
            save_state(state, self.folder / "last.pt")

    def on_epoch_end(self, state: TrainState, logs: dict[str, float]) -> None:
        payload = state_payload(state)
        save_checkpoint(self.folder / "last.pt", payload)
        if self.keep_epochs:
            save_checkpoint(self.folder / f"epoch_{state.epoch:02d}.pt", payload)
        if state.best.get("epoch") == state.epoch:
            save_checkpoint(self.folder / "best.pt", payload)
            save_checkpoint(self.folder / "G_best.pt", release_from(payload, metrics=dict(logs)))

    def on_train_end(self, state: TrainState) -> None:
        save_state(state, self.folder / "last.pt")


# ---------------------------------------------------------------- devices


def pick_device(name: str = "auto") -> torch.device:
    """``"auto"``: CUDA if present, else Apple's MPS, else the CPU; or the device named.

    Raises:
        ValueError: a name that is not a device (``gpu0``), or a device this machine lacks.
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"--device {name!r} is not a device: use auto, cpu, cuda, cuda:N or "
                         "mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for but CUDA is not available: use --device cpu")
    if device.type == "cuda" and device.index is not None \
            and device.index >= torch.cuda.device_count():
        raise ValueError(f"device {name!r} asked for but this machine has "
                         f"{torch.cuda.device_count()} CUDA device(s)")
    mps = getattr(torch.backends, "mps", None)
    if device.type == "mps" and not (mps and mps.is_available()):
        raise ValueError(f"device {name!r} asked for but Apple's MPS is not available here: "
                         "use --device cpu")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device {name!r} is not supported: use auto, cpu, cuda or mps")
    return device


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m repair.train``: the options of ``repair train`` (:mod:`repair.train_cli`)."""
    from repair.train_cli import main as cli_main

    return cli_main(argv)

if __name__ == "__main__":
    raise SystemExit(main())
