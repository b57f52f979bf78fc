"""Training the restorer of record by steps: fresh damage every step, warm-up and cosine decay.

The GAN recipes of :mod:`repair.train` walk a fixed list of photos epoch by epoch. The restorer
(:mod:`repair.nafnet`, recipe ``restorer``) learns from pairs drawn afresh at every step
(:class:`repair.synth.RestraintPairs`), so its loop counts steps; a *round* of ``val_every`` steps
plays the part of an epoch (validation, best checkpoint, history), and the callbacks of
:mod:`repair.callbacks` (checkpoints, history files, time limit) work unchanged.

Training is progressive: crops of ``crop`` px for most steps, then ``final_crop`` px (same pixels
per batch) for the last ``final_share`` of them, so that the channel attention and the global
branch see whole photos at the size they are used on.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from repair.nets import unwrap
from repair.train import Callback, TrainState, improved

__all__ = ["Schedule", "learning_rate", "crop_at", "restorer_step", "validate_restorer",
           "fit_restorer", "train_only"]


VAL_PSNR_CAP = 50.0
"""Validation PSNR is capped here per photo: a clean validation pair returned within 50 dB counts
as untouched, so the few clean pairs (100 dB as they are) do not swamp the mean."""


@dataclass(frozen=True)
class Schedule:
    """How long and at what sizes the restorer trains.

    Args:
        total_steps: optimiser steps in all (the cosine decay ends there).
        crop, final_crop: crop side for most steps, then for the last ``final_share`` of them.
        warmup: steps of linear warm-up of the learning rate.
        min_lr: the learning rate the cosine decays to.
        val_every: steps per round (validation, best checkpoint).
        grad_clip: clip the gradient norm to this (0: off).
    """

    total_steps: int
    crop: int = 128
    final_crop: int = 256
    final_share: float = 0.2
    warmup: int = 100
    min_lr: float = 1e-7
    val_every: int = 250
    grad_clip: float = 1.0

    def __post_init__(self):
        if self.total_steps < 1:
            raise ValueError(f"total_steps must be at least 1, got {self.total_steps}")
        if not 0 <= self.final_share <= 1:
            raise ValueError(f"final_share must be in [0, 1], got {self.final_share}")
        if self.crop < 16 or self.final_crop < 16:
            raise ValueError(f"crops must be at least 16 px, got {self.crop}, {self.final_crop}")
        if self.val_every < 1:
            raise ValueError(f"val_every must be at least 1, got {self.val_every}")


def learning_rate(base_lr: float, schedule: Schedule, step: int) -> float:
    """Linear warm-up to ``base_lr``, then cosine decay to ``schedule.min_lr`` at the last step."""
    if step < schedule.warmup:
        return base_lr * (step + 1) / schedule.warmup
    span = max(schedule.total_steps - schedule.warmup, 1)
    progress = min((step - schedule.warmup) / span, 1.0)
    return schedule.min_lr + (base_lr - schedule.min_lr) * 0.5 * (1 + math.cos(math.pi * progress))


def crop_at(schedule: Schedule, step: int, batch_size: int) -> tuple[int, int]:
    """``(crop, batch)`` at ``step``: the final phase keeps the pixels per batch (at least 1)."""
    if step < schedule.total_steps * (1 - schedule.final_share):
        return schedule.crop, batch_size
    batch = max(1, round(batch_size * schedule.crop ** 2 / schedule.final_crop ** 2))
    return schedule.final_crop, batch


def restorer_step(state: TrainState, x_clean: torch.Tensor, x_damaged: torch.Tensor,
                  mask: torch.Tensor, lr: float, grad_clip: float = 1.0) -> dict[str, float]:
    """One AdamW step: L1 to the clean photo + ``mask_weight`` x weighted BCE of the mask.

    Args:
        x_clean, x_damaged: (B, 1, S, S) in [-1, 1]; mask: (B, 1, S, S) bool, True where damaged.
        lr: the learning rate for this step.
    """
    recipe, net_G, opt_G = state.recipe, state.net_G, state.opt_G
    for group in opt_G.param_groups:
        group["lr"] = lr
    opt_G.zero_grad(set_to_none=True)
    x_restored, logits = net_G(x_damaged, with_mask=True)      # (B, 1, S, S) twice
    loss_l1 = F.l1_loss(x_restored, x_clean)
    loss_mask = torch.zeros(())
    if logits is not None and recipe.mask_weight:
        pos_weight = torch.tensor(recipe.mask_pos_weight, device=logits.device)
        loss_mask = F.binary_cross_entropy_with_logits(logits, mask.float(), pos_weight=pos_weight)
    loss_G = recipe.l1_weight * loss_l1 + recipe.mask_weight * loss_mask
    loss_G.backward()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(net_G.parameters(), grad_clip)
    opt_G.step()
    return {"loss_G": loss_G.item(), "loss_G_l1": loss_l1.item(), "loss_mask": loss_mask.item(),
            "lr": lr}


@torch.no_grad()
def validate_restorer(net_G: torch.nn.Module, x_clean: torch.Tensor, x_damaged: torch.Tensor,
                      mask: torch.Tensor, batch_size: int = 8, threshold: float = 0.5
                      ) -> dict[str, float]:
    """PSNR (capped at :data:`VAL_PSNR_CAP`) of the restored and of the damaged photos, L1, and
    the mask's F1 and IoU."""
    from repair.masks import mask_scores
    from repair.metrics import psnr

    net = unwrap(net_G)
    device = next(net.parameters()).device
    was_training = net.training
    net.eval()
    restored, found = [], []
    for start in range(0, len(x_damaged), batch_size):
        out, logits = net(x_damaged[start:start + batch_size].to(device), with_mask=True)
        restored.append(out.cpu())
        if logits is not None:
            found.append(torch.sigmoid(logits).cpu() > threshold)
    net.train(was_training)
    x_restored = torch.cat(restored)
    cap = VAL_PSNR_CAP   # clean pairs: an untouched photo scores the cap, not 100 dB
    logs = {"val_psnr": float(psnr(x_restored, x_clean).clamp(max=cap).mean()),
            "val_psnr_damaged": float(psnr(x_damaged, x_clean).clamp(max=cap).mean()),
            "val_l1": F.l1_loss(x_restored, x_clean).item()}
    if found:
        scores = mask_scores(torch.cat(found), mask)
        logs.update(val_mask_f1=scores["f1"], val_mask_iou=scores["iou"])
    return logs


def _log_line(state: TrainState, logs: dict[str, float], rate: float, left: int) -> str:
    eta = left / rate if rate > 0 else float("nan")
    return (f"step {state.global_step} loss_G {logs['loss_G']:.4f} l1 {logs['loss_G_l1']:.4f} "
            f"mask {logs['loss_mask']:.4f} lr {logs['lr']:.2e} {rate:.2f} steps/s "
            f"images {state.images_seen} eta {eta / 60:.0f} min")


def fit_restorer(state: TrainState, pairs, val: Sequence[torch.Tensor], schedule: Schedule,
                 batch_size: int | None = None, callbacks: Sequence[Callback] = (),
                 log: Callable[[str], None] | None = print, log_every: int = 50) -> TrainState:
    """Train ``state`` (recipe ``restorer``) from its ``global_step`` to ``schedule.total_steps``.

    Args:
        pairs: a :class:`repair.synth.RestraintPairs` (batch ``step`` is fixed by its seed).
        val: ``(x_clean, x_damaged, mask)`` fixed validation pairs (:func:`repair.synth.fixed_pairs`).
        batch_size: pairs per step in the first phase (default: the recipe's).
        callbacks: :class:`repair.train.Callback` objects; a round of ``val_every`` steps is their
            "epoch" (``state.epoch`` counts rounds).
        log: where progress lines go (``None``: silent); one every ``log_every`` steps.
    """
    batch_size = batch_size or state.recipe.batch_size
    device = next(state.net_G.parameters()).device   # pairs are made on the CPU, trained there
    state.net_G.train()
    state.stop = False
    started, first = time.time(), state.global_step
    while state.global_step < schedule.total_steps and not state.stop:
        crop, batch = crop_at(schedule, state.global_step, batch_size)
        batch_cpu = pairs.batch(state.global_step, batch, crop)
        x_clean, x_damaged, mask = (t.to(device) for t in batch_cpu)
        lr = learning_rate(state.recipe.lr, schedule, state.global_step)
        logs = restorer_step(state, x_clean, x_damaged, mask, lr, schedule.grad_clip)
        state.global_step += 1
        state.step_in_epoch += 1
        state.images_seen += batch
        logs = {"step": state.global_step, "crop": crop, **logs}
        state.history["steps"].append(logs)
        for cb in callbacks:
            cb.on_step(state, logs)
        if log and state.global_step % log_every == 0:
            rate = (state.global_step - first) / max(time.time() - started, 1e-9)
            log(_log_line(state, logs, rate, schedule.total_steps - state.global_step))
        done = state.global_step >= schedule.total_steps
        if state.step_in_epoch >= schedule.val_every or done:
            _end_round(state, val, callbacks, log)
    for cb in callbacks:
        cb.on_train_end(state)
    return state


def _end_round(state: TrainState, val: Sequence[torch.Tensor], callbacks: Sequence[Callback],
               log: Callable[[str], None] | None) -> None:
    """Validate, record the round, call the callbacks' ``on_epoch_end``."""
    state.epoch += 1
    state.step_in_epoch = 0
    logs = {"epoch": state.epoch, "step": state.global_step, "images_seen": state.images_seen,
            **validate_restorer(state.net_G, *val)}
    if improved(state.recipe, logs, state.best):
        state.best = dict(logs)
    state.history["epochs"].append(logs)
    if log:
        log(f"round {state.epoch} (step {state.global_step}): " + ", ".join(
            f"{k}={v:.4g}" for k, v in logs.items() if k.startswith("val")))
    for cb in callbacks:
        cb.on_epoch_end(state, logs)


def train_only(net: torch.nn.Module, branch: str | None) -> None:
    """Freeze every weight of ``net`` but those of its module ``branch`` (None: train all).

    Raises:
        ValueError: ``net`` has no such branch (e.g. ``sharpen`` without ``--sharpen-branch``).
    """
    if branch is None:
        return
    if getattr(net, branch, None) is None:
        raise ValueError(f"--train-only {branch}: this network has no {branch} branch; add "
                         f"--{branch}-branch (and --init the network to keep)")
    for name, param in net.named_parameters():
        param.requires_grad_(name.split(".")[0] == branch)
