"""Save and load training checkpoints safely: atomic writes, ``weights_only`` loads, clear errors.

Two kinds of file, one loader:

* a **full** checkpoint (written during training): both networks, both optimisers, the epoch and
  the step inside it, the torch / numpy / python random states, the recipe and settings, and the
  loss history, so that :func:`repair.train.fit` can resume exactly where it stopped;
* a **release** checkpoint (what ``checkpoints/`` commits): the generator's weights, the recipe,
  the history and the validation scores, a few MB.

Every file is written to a temporary file in the same folder and renamed into place, so an
interrupted save leaves the previous checkpoint intact. Loading uses ``torch.load(...,
weights_only=True)`` (no pickled code runs), and checks the architecture before copying weights.
"""

from __future__ import annotations

import io
import math
import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from repair.images import atomic_write_bytes

__all__ = [
    "FORMAT", "VERSION", "MAX_PARAMETERS", "CheckpointError", "ArchitectureMismatchError",
    "save_checkpoint", "safe_torch_load", "read_checkpoint", "net_record", "check_architecture",
    "check_network", "check_net_record", "check_training_state", "foreign_file", "load_net",
    "load_generator",
    "rng_state", "set_rng_state", "release_from",
]

FORMAT = "repair.train"
VERSION = 1


MAX_PARAMETERS = 500_000_000
"""The largest network a checkpoint may ask for (2 GB of float32 weights); more is refused before
anything is allocated (a malformed hyper-parameter can ask for terabytes)."""


class CheckpointError(ValueError):
    """A file that is not a checkpoint this tool can use (damaged, truncated, foreign, malformed
    or unsafe); the one error class of every way a checkpoint comes in."""


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


_UNTRUSTED = ("{path}: holds Python objects besides weights and numbers{named}; loading them "
              "could run code, so this is not a checkpoint this tool can trust: use a checkpoint "
              "written by `repair train` (or converted by this package) instead")


def safe_torch_load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` with one clear :class:`CheckpointError` for every
    way it can fail; a file that needs unpickling of code is refused, never retried unsafely.

    Raises:
        FileNotFoundError: no file at ``path``. CheckpointError: damaged, foreign or unsafe.
    """
    import pickle

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint (train one with `repair train`, or "
                                f"check the path)")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises RuntimeError, UnpicklingError, EOFError, ...
        text = str(err)
        if isinstance(err, pickle.UnpicklingError) and "Unsupported global" in text:
            found = re.search(r"GLOBAL (\S+)", text)
            named = f" (it names {found.group(1)})" if found else ""
            raise CheckpointError(_UNTRUSTED.format(path=path, named=named)) from None
        first = next((line for line in text.splitlines() if line.strip()), "")
        if "weights_only" in text or "weights only" in text.lower():   # never quote torch's
            found = re.search(r"WeightsUnpickler error:\s*([^\n]+)", text)   # advice to unpickle
            first = found.group(1).strip() if found else ""
        raise CheckpointError(
            f"{path}: cannot read this file as a checkpoint ({type(err).__name__}"
            f"{': ' + first if first else ''}); it is damaged or incomplete - delete it and save "
            "or download it again") from None


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


# ---------------------------------------------------------------- the schema check

_RANGES = {"ngf": (1, 1024), "ndf": (1, 1024), "width": (1, 256), "mask_width": (0, 256),
           "depth": (1, 8), "n_layers": (1, 8), "image_size": (16, 8192),
           "middle_blocks": (0, 64), "mask_blocks": (1, 16), "resolution": (4, 4096),
           "channels": (1, 3), "z_dim": (1, 4096), "w_dim": (1, 4096), "mapping_layers": (1, 16),
           "channel_base": (1, 1 << 20), "channel_max": (1, 4096)}
_ANY_INT = (0, 4096)   # a whole-number hyper-parameter without a range of its own


def _check_value(name: str, value: Any, where: str) -> None:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, (list, tuple)):
        if len(value) > 16:
            raise CheckpointError(f"{where}: hyper-parameter {name} has {len(value)} entries")
        for item in value:
            _check_value(name, item, where)
        return
    if isinstance(value, float):
        if not math.isfinite(value) or abs(value) > 1e6:
            raise CheckpointError(f"{where}: hyper-parameter {name}={value!r} is out of range")
        return
    if not isinstance(value, int):
        raise CheckpointError(f"{where}: hyper-parameter {name} is a {type(value).__name__}, "
                              "not a number, text or list")
    low, high = _RANGES.get(name, _ANY_INT)
    if not low <= value <= high:
        raise CheckpointError(f"{where}: hyper-parameter {name}={value} is outside {low}-{high}")


def check_network(cls: type[nn.Module], hparams: Any, state_dict: Any, where: str
                  ) -> nn.Module:
    """The schema check of one network in a checkpoint; returns it built on the ``meta`` device.

    Checks that the hyper-parameters are known names of ``cls`` within their ranges, that the
    network they describe is of a sane size (:data:`MAX_PARAMETERS`, counted without allocating
    anything), that ``state_dict`` holds exactly its entries with the right shapes, and that
    every weight is finite. ``where`` starts every message (a path and which network).

    Raises:
        CheckpointError: the first problem found, saying what to do.
    """
    import inspect

    if not isinstance(hparams, dict) or not all(isinstance(k, str) for k in hparams):
        raise CheckpointError(f"{where}: its hyper-parameters are not a table of names")
    accepted = inspect.signature(cls).parameters
    unknown = sorted(set(hparams) - set(accepted))
    if unknown:
        raise CheckpointError(f"{where}: unknown hyper-parameter(s) {', '.join(unknown)} for "
                              f"{cls.__name__} (known: {', '.join(accepted)}); the file was "
                              "written by another version or edited: use another checkpoint")
    for name, value in hparams.items():
        _check_value(name, value, where)
        default = accepted[name].default
        kinds = {bool: (bool,), int: (int,), float: (int, float), str: (str,),
                 tuple: (list, tuple), list: (list, tuple)}.get(type(default))
        if kinds and (not isinstance(value, kinds) or isinstance(value, bool) != (bool in kinds)):
            said = {bool: "true or false", int: "whole number", float: "number", str: "text"}
            raise CheckpointError(f"{where}: hyper-parameter {name}={value!r} should be "
                                  f"{said.get(type(default), 'a list')} (default {default!r})")
    try:
        with torch.device("meta"):
            twin = cls(**hparams)
    except Exception as err:
        raise CheckpointError(f"{where}: its hyper-parameters do not describe a "
                              f"{cls.__name__} ({err})") from None
    size = sum(t.numel() for t in twin.state_dict().values())
    if size > MAX_PARAMETERS:
        raise CheckpointError(f"{where}: asks for a network of {size:,} numbers (limit "
                              f"{MAX_PARAMETERS:,}); its hyper-parameters are absurd: use "
                              "another checkpoint")
    _check_state(twin.state_dict(), state_dict, where)
    return twin


def _check_state(expected: dict[str, torch.Tensor], state_dict: Any, where: str) -> None:
    if not isinstance(state_dict, dict):
        raise CheckpointError(f"{where}: has no table of weights (state_dict)")
    missing = [k for k in expected if k not in state_dict]
    extra = [k for k in state_dict if k not in expected]
    if missing or extra:
        said = (f"missing {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}"
                if missing else f"unexpected {', '.join(map(str, extra[:3]))}")
        raise CheckpointError(f"{where}: its weights do not fit the recorded architecture "
                              f"({said}); the file is incomplete or from another model")
    for name, ref in expected.items():
        value = state_dict[name]
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != tuple(ref.shape):
            got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise CheckpointError(f"{where}: weight {name} has shape {got}, expected "
                                  f"{tuple(ref.shape)}; the file is damaged or from another model")
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise CheckpointError(f"{where}: has NaN or infinite weights ({name}): the run that "
                                  "wrote it diverged; use an earlier checkpoint")


def check_net_record(record: Any, what: str = "network", path: str | os.PathLike | None = None
                     ) -> type[nn.Module]:
    """The schema check of a :func:`net_record` (``arch``, ``hparams``, ``state_dict``); returns
    the network class. Raises :class:`CheckpointError` naming what is wrong."""
    from repair.nets import DISCRIMINATORS, GENERATORS

    where = f"{path}: the checkpoint's {what}" if path else f"the checkpoint's {what}"
    if not isinstance(record, dict) or not {"arch", "hparams", "state_dict"} <= set(record):
        raise CheckpointError(f"{where} is missing (or lacks arch, hparams or state_dict); the "
                              "file is incomplete or not a network checkpoint")
    registry = {**GENERATORS, **DISCRIMINATORS}
    if not isinstance(record["arch"], str) or record["arch"] not in registry:
        raise CheckpointError(f"{where}: unknown architecture {record['arch']!r} (known: "
                              f"{', '.join(registry)})")
    cls = registry[record["arch"]]
    check_network(cls, record["hparams"], record["state_dict"], where)
    return cls


_FULL_STATE = {"generator": dict, "opt_G": dict, "epoch": int, "step_in_epoch": int,
               "global_step": int, "images_seen": int, "rng": dict, "history": dict,
               "best": dict, "settings": dict, "recipe": dict}


def check_training_state(payload: dict[str, Any], path: str | os.PathLike) -> None:
    """The schema check of a full (resumable) checkpoint: every entry :func:`repair.callbacks.
    load_state` needs, of the right type, and both networks checked (:func:`check_net_record`).

    Raises:
        CheckpointError: a release checkpoint, or a missing or malformed entry.
    """
    if payload.get("kind") != "full":
        raise CheckpointError(f"{path}: a generator-only release checkpoint cannot resume "
                              "training; load it with repair.checkpoint.load_generator, or "
                              "pass it as --init")
    for key, kind in _FULL_STATE.items():
        if not isinstance(payload.get(key), kind) or (kind is int and payload[key] < 0):
            raise CheckpointError(f"{path}: its {key!r} entry is missing or malformed; the file "
                                  "cannot resume training: move it away to start afresh")
    check_net_record(payload["generator"], "generator", path)
    if payload.get("discriminator") is not None:
        check_net_record(payload["discriminator"], "discriminator", path)
    for key in ("opt_G", "opt_D"):
        opt = payload.get(key)
        if opt is not None and not ({"state", "param_groups"} <= set(opt)):
            raise CheckpointError(f"{path}: its {key!r} optimiser state is malformed; move the "
                                  "file away to start afresh")


class foreign_file:
    """Context manager: any failure while reading another program's weights (an NVIDIA pickle
    with odd contents: TypeError, RecursionError, KeyError ...) becomes one
    :class:`CheckpointError` naming the file."""

    def __init__(self, path: str | os.PathLike, kind: str = "stylegan2-ada-pytorch pickle"):
        self.path, self.kind = path, kind

    def __enter__(self):
        return self

    def __exit__(self, kind, err, tb):
        if err is None or isinstance(err, (CheckpointError, FileNotFoundError, KeyboardInterrupt)):
            return False
        if not isinstance(err, Exception):
            return False
        if type(err).__name__ == "CheckpointError":   # repair.stylegan's own clear errors
            raise CheckpointError(str(err)) from None
        raise CheckpointError(f"{self.path}: not a {self.kind} this tool can read "
                              f"({type(err).__name__}); check that it is the right file, or "
                              "download it again") from None


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
