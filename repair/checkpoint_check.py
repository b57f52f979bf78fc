"""Refusing bad checkpoint files: the one error class, the safe load, and the schema check.

Every way a file of weights comes in (a checkpoint of :mod:`repair.checkpoint`, a converted or
NVIDIA StyleGAN2 file of :mod:`repair.stylegan_io`) goes through here before anything is built
from it:

* :func:`safe_torch_load`: ``torch.load(..., weights_only=True)``; a damaged file, or one that
  would need pickled code to load, becomes one clear :class:`CheckpointError`, never a retry
  without ``weights_only``;
* :func:`check_network`, :func:`check_net_record`: known hyper-parameters within their ranges, a
  network of sane size (:data:`MAX_PARAMETERS`, counted on the ``meta`` device), exactly the
  expected weights with the right shapes, all finite;
* :func:`check_training_state`: every entry a full (resumable) checkpoint needs, of the right type;
* :class:`foreign_file`: any failure while reading another program's weights becomes a
  :class:`CheckpointError` naming the file.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["MAX_PARAMETERS", "CheckpointError", "safe_torch_load", "check_network",
           "check_net_record", "check_training_state", "foreign_file"]

MAX_PARAMETERS = 500_000_000
"""The largest network a checkpoint may ask for (2 GB of float32 weights); more is refused before
anything is allocated (a malformed hyper-parameter can ask for terabytes)."""


class CheckpointError(ValueError):
    """A file that is not a checkpoint this tool can use (damaged, truncated, foreign, malformed
    or unsafe); the one error class of every way a checkpoint comes in."""


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
