"""Save and load training checkpoints safely: atomic writes, ``weights_only`` loads, clear errors.

Two kinds of file, one loader:

* a **full** checkpoint (written during training): both networks, both optimisers, the epoch and
  the step inside it, the torch / numpy / python random states, the recipe and settings, and the
  loss history, so that :func:`repair.train.fit` can resume exactly where it stopped;
* a **release** checkpoint (what ``checkpoints/`` commits): the generator's weights, the recipe,
  the history and the validation scores, a few MB.

Every file is written to a temporary file in the same folder and renamed into place, so an
interrupted save leaves the previous checkpoint intact. Loading uses ``torch.load(...,
weights_only=True)`` (no pickled code runs), and every network goes through the schema check of
:mod:`repair.checkpoint_check` and the architecture check below before its weights are copied.
"""

from __future__ import annotations

import io
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from repair.checkpoint_check import CheckpointError, check_net_record, safe_torch_load
from repair.images import atomic_write_bytes

__all__ = [
    "FORMAT", "VERSION", "CheckpointError", "ArchitectureMismatchError", "save_checkpoint",
    "read_checkpoint", "net_record", "check_architecture", "load_net", "load_generator",
    "rng_state", "set_rng_state", "release_from",
]
# CheckpointError lives in repair.checkpoint_check; it is named here too because chapter 03
# catches it as ``checkpoint.CheckpointError``.

FORMAT = "repair.train"
VERSION = 1


class ArchitectureMismatchError(CheckpointError):
    """A checkpoint whose network is not the architecture it is being loaded into."""


def _plain(module: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel / DataParallel wrapper (or itself)."""
    return getattr(module, "module", module)


def net_record(net: nn.Module) -> dict[str, Any]:
    """``{"arch", "hparams", "state_dict"}`` of a network of :mod:`repair.nets` (CPU tensors)."""
    net = _plain(net)
    state = {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}
    return {"arch": net.arch, "hparams": dict(net.hparams), "state_dict": state}


def rng_state() -> dict[str, Any]:
    """The torch (CPU and CUDA), numpy and python random states, as weights-only-loadable values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": version, "internal": list(internal), "gauss": gauss},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the random states saved by :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (tensors, numbers, strings, lists, dicts) atomically to ``path``.

    ``format`` and ``version`` keys are added. The bytes go to a temporary file in the same folder,
    which is then renamed over ``path``: a crash mid-save never leaves a half-written checkpoint.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, **payload}, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu"
                    ) -> dict[str, Any]:
    """The dictionary stored in a checkpoint, loaded with ``weights_only=True``.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: the file is damaged (e.g. truncated), unsafe or not a checkpoint of this
            project.
    """
    path = Path(path)
    payload = safe_torch_load(path, map_location)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a checkpoint of repair.train (no format={FORMAT!r} "
                              "entry); was it saved by another program?")
    version = payload.get("version", 0)
    if not isinstance(version, int) or version > VERSION:
        raise CheckpointError(f"{path}: checkpoint version {version!r} is newer than "
                              f"this code understands ({VERSION}); update the package")
    return payload


def _describe(arch: str, hparams: dict) -> str:
    return f"{arch}(" + ", ".join(f"{k}={v!r}" for k, v in sorted(hparams.items())) + ")"


def check_architecture(record: dict[str, Any], net: nn.Module, what: str = "network") -> None:
    """Raise :class:`ArchitectureMismatchError` unless ``net`` has the recorded arch and hparams."""
    net = _plain(net)
    mine = (getattr(net, "arch", type(net).__name__), dict(getattr(net, "hparams", {})))
    saved = (record["arch"], dict(record["hparams"]))
    if mine != saved:
        raise ArchitectureMismatchError(
            f"the checkpoint's {what} is {_describe(*saved)} but it is being loaded into "
            f"{_describe(*mine)}: build the network from the checkpoint (repair.checkpoint."
            "load_generator) or pick the checkpoint of this model")


def load_net(record: dict[str, Any], net: nn.Module | None = None, what: str = "network",
             device: str | torch.device = "cpu") -> nn.Module:
    """Copy a :func:`net_record` into ``net`` (after checking it), or build a new net from it.

    Every record goes through :func:`check_net_record` first (entries, hyper-parameters, shapes,
    finite weights), so a malformed checkpoint is refused before anything is allocated.
    """
    cls = check_net_record(record, what)
    if net is None:
        net = cls(**record["hparams"])
    check_architecture(record, net, what)
    try:
        _plain(net).load_state_dict(record["state_dict"])   # float16 release weights are cast up
    except (RuntimeError, TypeError, ValueError) as err:
        raise CheckpointError(f"the checkpoint's {what} does not load: "
                              f"{str(err).splitlines()[0]}") from None
    return net.to(device)


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu",
                   eval_mode: bool = True) -> nn.Module:
    """The generator of a full or release checkpoint, rebuilt from its recorded architecture.

    Args:
        path: a ``.pt`` file written by :mod:`repair.train` (or :func:`release_from`).
        device: where to put the network.
        eval_mode: switch it to ``eval()`` (BatchNorm uses its running statistics).
    """
    payload = read_checkpoint(path)
    try:
        net_G = load_net(payload.get("generator"), what="generator", device=device)
    except CheckpointError as err:
        raise CheckpointError(f"{path}: {err}" if str(path) not in str(err) else str(err)) from None
    net_G.checkpoint_info = {k: payload.get(k) for k in ("recipe", "kind", "metrics", "images_seen",
                                                         "epoch", "history", "best", "settings")}
    return net_G.eval() if eval_mode else net_G


def release_from(payload: dict[str, Any], half: bool = False, **extra: Any) -> dict[str, Any]:
    """A generator-only ("release") payload from a full checkpoint payload, plus ``extra`` keys.

    Args:
        payload: a full checkpoint's dictionary (:func:`read_checkpoint`).
        half: store floating-point weights as float16 (half the size; they are loaded back into
            the float32 network, a rounding of about 1e-3 relative).
        **extra: more entries, e.g. ``metrics={"val_psnr": ...}``.
    """
    keep = ("recipe", "settings", "epoch", "global_step", "images_seen", "history", "best")
    release = {k: payload[k] for k in keep if k in payload}
    generator = dict(payload["generator"])
    if half:
        generator["state_dict"] = {k: v.half() if v.is_floating_point() else v
                                   for k, v in generator["state_dict"].items()}
    release.update(kind="release", generator=generator, **extra)
    return release
