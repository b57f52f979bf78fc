"""What :func:`repair.train.fit` does besides training: checkpoints, loss histories, a time limit.

The callbacks (:class:`HistoryWriter`, :class:`Checkpointer`, :class:`TimeLimit`) plug into
``fit(..., callbacks=[...])`` and into :func:`repair.restorer_train.fit_restorer`; a full training
state goes to a file with :func:`save_state` and comes back, to resume, with :func:`load_state`.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any

import torch

from repair.checkpoint import (load_net, net_record, read_checkpoint, release_from, rng_state,
                               save_checkpoint, set_rng_state)
from repair.checkpoint_check import CheckpointError
from repair.history import write_history
from repair.recipes import Recipe
from repair.train import Callback, TrainState, new_state

__all__ = ["HistoryWriter", "TimeLimit", "Checkpointer", "state_payload", "save_state",
           "load_state"]


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
        """Write the history so far."""
        write_history(state.history, self.folder)

    def on_train_end(self, state: TrainState) -> None:
        """Write the whole history."""
        write_history(state.history, self.folder)


class TimeLimit(Callback):
    """Ends training (after the current step, checkpoints written) once ``seconds`` have passed."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.time() + seconds

    def on_step(self, state: TrainState, logs: dict[str, float]) -> None:
        """Ask :func:`repair.train.fit` to stop once the deadline has passed."""
        if time.time() >= self.deadline:
            state.stop = True


class Checkpointer(Callback):
    """Saves ``last.pt`` (full) every epoch and every ``every`` steps, ``epoch_NN.pt`` if asked,
    ``best.pt`` when the validation score improves, and ``G_best.pt`` (generator only)."""

    def __init__(self, folder: str | os.PathLike, every: int | None = None,
                 keep_epochs: bool = False) -> None:
        self.folder, self.every, self.keep_epochs = Path(folder), every, keep_epochs

    def on_step(self, state: TrainState, logs: dict[str, float]) -> None:
        """Save ``last.pt`` every ``every`` steps."""
        if self.every and state.global_step % self.every == 0:
            save_state(state, self.folder / "last.pt")

    def on_epoch_end(self, state: TrainState, logs: dict[str, float]) -> None:
        """Save ``last.pt`` (and ``epoch_NN.pt``), and ``best.pt`` + ``G_best.pt`` if best."""
        payload = state_payload(state)
        save_checkpoint(self.folder / "last.pt", payload)
        if self.keep_epochs:
            save_checkpoint(self.folder / f"epoch_{state.epoch:02d}.pt", payload)
        if state.best.get("epoch") == state.epoch:
            save_checkpoint(self.folder / "best.pt", payload)
            save_checkpoint(self.folder / "G_best.pt", release_from(payload, metrics=dict(logs)))

    def on_train_end(self, state: TrainState) -> None:
        """Save ``last.pt`` where training stopped (resume from it)."""
        save_state(state, self.folder / "last.pt")
