"""The training loop: one step for the discriminator, one for the generator, and ``fit``.

The recipes it runs (the paper's, pix2pix's and two ablations) are in :mod:`repair.recipes`;
the callbacks that write checkpoints and loss histories, and saving/resuming a training state, in
:mod:`repair.callbacks`; the command line in :mod:`repair.train_cli`: ``repair train --recipe
paper`` (also ``python -m repair.train``), or several processes with ``torchrun
--nproc_per_node N -m repair.train ...`` (DistributedDataParallel).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from repair.nets import REAL, unwrap
from repair.recipes import Recipe, build_nets, get_recipe, make_optimizers
from repair.sampler import make_train_loader

# Old addresses of names that live elsewhere, kept for notebook 03 (not part of this module's API):
from repair.device import pick_device  # noqa: F401  (home: repair.device)
from repair.history import plot_history  # noqa: F401  (home: repair.history)
from repair.recipes import RECIPES, widths  # noqa: F401  (home: repair.recipes)

__all__ = [
    "adversarial_loss", "update_D", "update_G", "train_step",
    "TrainState", "new_state",
    "validate", "improved", "Callback", "fit",
]


# ---------------------------------------------------------------- one step per network


def adversarial_loss(scores: torch.Tensor, real: bool, net_D: nn.Module) -> torch.Tensor:
    """``BCEWithLogitsLoss`` of the discriminator's scores against "real" (1) or "fake" (0).

    A logit head (PatchGAN, fixed paper head) is scored as intended. The paper's softmax head
    returns probabilities ``(B, 2)``; as in the paper they go into ``BCEWithLogitsLoss`` as if they
    were logits, reading column :data:`repair.nets.REAL` as "real" - the sigmoid of a probability
    lies in [0.5, 0.73], which is why that loss barely moves (chapter 02).
    """
    if not getattr(unwrap(net_D), "returns_logits", False):
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
            plain_D = unwrap(net_D)                          # no DDP sync: D does not step here
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


# ---------------------------------------------------------------- state, validation


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


@torch.no_grad()
def validate(state: TrainState, val_ds: Dataset, batch_size: int = 16,
             device: str | torch.device = "cpu", amp: bool = False) -> dict[str, float]:
    """Validation scores of the generator: loss_G (as in training), L1, PSNR of output and input."""
    from repair.metrics import psnr

    device = torch.device(device)
    net_G, net_D = unwrap(state.net_G), state.net_D and unwrap(state.net_D)
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


# ---------------------------------------------------------------- hooks of the loop


class Callback:
    """Hooks that :func:`fit` calls; override the ones you need."""

    def on_step(self, state: TrainState, logs: dict[str, float]) -> None:
        """After every optimiser step; ``logs`` holds the step's losses. May set ``state.stop``."""

    def on_epoch_end(self, state: TrainState, logs: dict[str, float]) -> None:
        """After every epoch; ``logs`` holds the validation scores (if any)."""

    def on_train_end(self, state: TrainState) -> None:
        """Once, when :func:`fit` returns (also after a stop)."""


def improved(recipe: Recipe, logs: dict[str, float], best: dict[str, Any]) -> bool:
    """Whether ``logs`` beat ``best`` on the recipe's ``best_by`` score (PSNR up, losses down)."""
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
    recipe, device = state.recipe, torch.device(device)
    num_epochs = recipe.num_epochs if num_epochs is None else num_epochs
    batch_size = batch_size or recipe.batch_size
    if max_images is not None:
        max_steps = min(max_steps or math.inf, math.ceil(max_images / (batch_size * world)))
    loader = make_train_loader(train_ds, batch_size, num_workers, seed, rank, world, epoch_size)
    batches_per_epoch = math.ceil(math.ceil(loader.sampler.size / world) / batch_size)
    for net in (n for n in (state.net_G, state.net_D) if n is not None):
        net.train()
    state.stop = False
    while state.epoch < num_epochs and (max_steps is None or state.global_step < max_steps) \
            and not state.stop:
        if hasattr(train_ds, "set_epoch"):
            train_ds.set_epoch(state.epoch)
        loader.sampler.set_epoch(state.epoch, skip=state.step_in_epoch * batch_size)
        _run_epoch(state, loader, f"{recipe.name} epoch {state.epoch + 1}/{num_epochs}",
                   max_steps, device, amp, callbacks, progress and rank == 0, world)
        if state.step_in_epoch < batches_per_epoch:
            break                                                      # stopped mid-epoch
        _end_epoch(state, val_ds, device, amp, callbacks, progress and rank == 0)
    for cb in callbacks:
        cb.on_train_end(state)
    return state


def _run_epoch(state: TrainState, loader: DataLoader, desc: str, max_steps: int | None,
               device: torch.device, amp: bool, callbacks: Sequence[Callback], progress: bool,
               world: int) -> None:
    """The steps of one epoch (or of its rest), until it ends, ``max_steps`` or a stop."""
    from tqdm.auto import tqdm

    bar = tqdm(loader, desc=desc, disable=not progress, leave=False)
    for x_clean, x_damaged, _ in bar:
        x_clean = x_clean.to(device, non_blocking=True)                # (B, 1, H, W)
        x_damaged = x_damaged.to(device, non_blocking=True)            # (B, 1, H, W)
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
        if world > 1:                                                  # all processes stop together
            state.stop = _any_process(state.stop, device)
        if state.stop or (max_steps is not None and state.global_step >= max_steps):
            break
    bar.close()


def _end_epoch(state: TrainState, val_ds: Dataset | None, device: torch.device, amp: bool,
               callbacks: Sequence[Callback], progress: bool) -> None:
    """Count the epoch, validate, record the best epoch, and call the callbacks."""
    from tqdm.auto import tqdm

    state.epoch += 1
    state.step_in_epoch = 0
    epoch_logs: dict[str, Any] = {"epoch": state.epoch, "step": state.global_step,
                                  "images_seen": state.images_seen}
    if val_ds is not None:
        epoch_logs.update(validate(state, val_ds, device=device, amp=amp))
        if improved(state.recipe, epoch_logs, state.best):
            state.best = dict(epoch_logs)
    state.history["epochs"].append(epoch_logs)
    if progress:
        tqdm.write(f"{state.recipe.name} epoch {state.epoch}: " + ", ".join(
            f"{k}={v:.4g}" for k, v in epoch_logs.items() if k.startswith("val")))
    for cb in callbacks:
        cb.on_epoch_end(state, epoch_logs)


if __name__ == "__main__":
    # `python -m repair.train ...` (and torchrun's `-m repair.train`) runs `repair train`, as the
    # commands recorded in checkpoints/MANIFEST.md do. The command line lives above this module
    # (repair.train_cli imports it), so it is loaded by name here rather than imported.
    import importlib

    raise SystemExit(importlib.import_module("repair.train_cli").main())
