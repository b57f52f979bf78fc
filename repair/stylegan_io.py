"""StyleGAN2 generators to and from files: ours, training checkpoints, NVIDIA's pickles.

A generator file is ``{"kind", "config", "state_dict", ...}`` (:func:`save_stylegan`);
:func:`load_stylegan` also reads a training checkpoint (its EMA generator) and a
stylegan2-ada-pytorch ``.pkl``, converted tensor by tensor without running any of NVIDIA's code
(:func:`convert_nvidia_pickle`, :func:`nvidia_generator_config`).
"""

from __future__ import annotations

import io
import os
import pickle
import re
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from repair.checkpoint_check import (CheckpointError, check_network, foreign_file,
                                     safe_torch_load)
from repair.images import atomic_write_bytes
from repair.stylegan import GENERATOR_KIND, StyleGAN2Generator, fir_filter

__all__ = ["CheckpointError", "save_stylegan", "load_stylegan", "convert_nvidia_pickle",
           "nvidia_generator_config"]


def save_stylegan(net_G: StyleGAN2Generator, path: str | os.PathLike, **extra) -> Path:
    """Write ``net_G``'s config and weights to ``path`` atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"kind": GENERATOR_KIND, "config": dict(net_G.config),
               "state_dict": {k: v.detach().cpu() for k, v in net_G.state_dict().items()}, **extra}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def load_stylegan(path: str | os.PathLike, device: str | torch.device = "cpu",
                   key: str = "G_ema") -> StyleGAN2Generator:
    """A :class:`StyleGAN2Generator` from our file, a training checkpoint or an NVIDIA ``.pkl``.

    Args:
        path: ``save_stylegan`` output, a :mod:`repair.gantrain` checkpoint (uses ``key``,
            default the EMA generator), or a stylegan2-ada-pytorch pickle (converted on the fly).
        device: where to put the network (it is returned in eval mode, frozen).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file; check the path or fetch it with "
                                "repair.registry.fetch(...)")
    if path.suffix == ".pkl":
        with foreign_file(path):
            state, conv_clamp = _read_nvidia(path, key)
            config = nvidia_generator_config(state, conv_clamp)
    else:
        payload = safe_torch_load(path)
        if isinstance(payload, dict) and key in payload and isinstance(payload[key], dict):
            payload = payload[key]  # a training checkpoint
        if not isinstance(payload, dict) or payload.get("kind") != GENERATOR_KIND:
            found = payload.get("kind", "no 'kind' field") if isinstance(payload, dict) else \
                type(payload).__name__
            raise CheckpointError(
                f"{path}: this checkpoint holds {found!r}, not a StyleGAN2 generator; pass a file "
                "written by repair.stylegan_io.save_stylegan or repair.gantrain, or an NVIDIA .pkl")
        state, config = payload.get("state_dict"), payload.get("config")
    check_network(StyleGAN2Generator, config, state, f"{path}: the generator")
    net_G = StyleGAN2Generator(**config)
    try:
        net_G.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(f"{path}: weights do not fit the recorded config ({err})") from None
    return net_G.to(device).eval().requires_grad_(False)


# ---------------------------------------------------------------- NVIDIA pickles

class _Captured:
    """Stand-in for any class of NVIDIA's code: keeps its pickled state, runs none of its code."""

    args: tuple = ()
    kwargs: dict = {}
    state = None
    name = "?"

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs, self.state, self.name = args, kwargs, None, "?"

    def __setstate__(self, state):
        self.state = state

    def __setitem__(self, key, value):  # dict subclasses (dnnlib.EasyDict) fill themselves
        self.__dict__.setdefault("items", {})[key] = value

    def append(self, value):  # list subclasses
        """Record an item of a pickled list subclass."""
        self.__dict__.setdefault("values", []).append(value)

    def extend(self, values):
        """Record items of a pickled list subclass."""
        self.__dict__.setdefault("values", []).extend(values)

    def __call__(self, *args, **kwargs):  # an unknown function: record the call only
        return _Captured(*args, **kwargs)


def _stand_in(name: str) -> type:
    return type(name.rsplit(".", 1)[-1], (_Captured,), {"qualname": name})


def _reconstruct_persistent(meta: dict) -> _Captured:
    """What ``torch_utils.persistence`` pickles: a dict holding the class name and its state."""
    obj = _Captured()
    obj.name, obj.state = meta.get("class_name", "?"), meta.get("state")
    return obj


def _storage_from_bytes(data: bytes):
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


class _NvidiaUnpickler(pickle.Unpickler):
    """Reads stylegan2-ada-pytorch pickles without their embedded source: only tensor rebuilding
    and plain containers are real; every other class or function becomes an inert stand-in."""

    SAFE = {("collections", "OrderedDict"): OrderedDict, ("builtins", "set"): set,
            ("builtins", "frozenset"): frozenset, ("builtins", "dict"): dict,
            ("torch", "Size"): torch.Size, ("torch._utils", "_rebuild_tensor_v2"):
            torch._utils._rebuild_tensor_v2, ("torch._utils", "_rebuild_parameter"):
            torch._utils._rebuild_parameter, ("torch._utils", "_rebuild_parameter_with_state"):
            torch._utils._rebuild_parameter_with_state, ("torch.storage", "_load_from_bytes"):
            _storage_from_bytes, ("torch_utils.persistence", "_reconstruct_persistent_obj"):
            _reconstruct_persistent, ("numpy", "dtype"): np.dtype}

    def find_class(self, module: str, name: str):
        """The real class for safe names (tensors, containers), an inert stand-in for the rest."""
        if (module, name) in self.SAFE:
            return self.SAFE[(module, name)]
        return _stand_in(f"{module}.{name}")


def _flatten(obj, prefix: str, out: dict, clamps: set) -> None:
    state = obj.state if isinstance(obj, _Captured) else None
    if not isinstance(state, dict):
        return
    if "conv_clamp" in state:  # an attribute of NVIDIA's synthesis layers
        clamps.add(state["conv_clamp"])
    for group in ("_parameters", "_buffers"):
        for name, value in (state.get(group) or {}).items():
            if isinstance(value, torch.Tensor):
                out[prefix + name] = value.detach().float()
    for name, child in (state.get("_modules") or {}).items():
        _flatten(child, f"{prefix}{name}.", out, clamps)


def convert_nvidia_pickle(path: str | os.PathLike, key: str = "G_ema") -> dict[str, torch.Tensor]:
    """Our generator's ``state_dict`` from a stylegan2-ada-pytorch ``.pkl``, without NVIDIA code.

    Args:
        path: the pickle (a dict with ``G``, ``D``, ``G_ema``, ...).
        key: which network to convert (``G_ema``, the averaged one, is the published generator).
    """
    return _read_nvidia(path, key)[0]


def _read_nvidia(path, key: str) -> tuple[dict[str, torch.Tensor], float | None]:
    """(our state_dict, the conv_clamp NVIDIA's layers recorded, None if none)."""
    try:
        with open(path, "rb") as f:
            data = _NvidiaUnpickler(f).load()
    except (pickle.UnpicklingError, EOFError, RuntimeError) as err:
        raise CheckpointError(
            f"{path}: not a readable stylegan2-ada-pytorch pickle ({err})") from None
    if not isinstance(data, dict) or key not in data:
        raise CheckpointError(f"{path}: expected a dict with {key!r} (a stylegan2-ada-pytorch "
                              "network pickle); this file holds something else")
    flat: dict[str, torch.Tensor] = {}
    clamps: set = set()
    _flatten(data[key], "", flat, clamps)
    if "mapping.embed.weight" in flat:
        raise CheckpointError(f"{path}: a class-conditional generator; only unconditional ones "
                              "are supported")
    if "synthesis.b4.const" not in flat:
        raise CheckpointError(f"{path}: {key} is not a StyleGAN2 generator (no synthesis.b4.const)")
    clamp = next((float(c) for c in clamps if isinstance(c, (int, float))), None)
    return _rename_nvidia(flat), clamp


def _rename_nvidia(flat: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    resolutions = sorted(int(m.group(1)) for k in flat
                         if (m := re.fullmatch(r"synthesis\.b(\d+)\.const", k) or
                             re.fullmatch(r"synthesis\.b(\d+)\.conv1\.weight", k)))
    resolutions = sorted(set(resolutions))
    for name, value in flat.items():
        if m := re.fullmatch(r"mapping\.fc(\d+)\.(weight|bias)", name):
            out[f"mapping.layers.{m.group(1)}.{m.group(2)}"] = value
    out["mapping.w_avg"] = flat["mapping.w_avg"]
    out["const"] = flat["synthesis.b4.const"]
    conv_index = 0
    for i, r in enumerate(resolutions):
        for conv in (("conv0", "conv1") if r > 4 else ("conv1",)):
            src, dst = f"synthesis.b{r}.{conv}.", f"convs.{conv_index}."
            out[dst + "affine.weight"] = flat[src + "affine.weight"]
            out[dst + "affine.bias"] = flat[src + "affine.bias"]
            out[dst + "conv.weight"] = flat[src + "weight"]
            out[dst + "conv.resample_filter"] = fir_filter()
            out[dst + "noise_const"] = flat[src + "noise_const"]
            out[dst + "noise_strength"] = flat[src + "noise_strength"].reshape([])
            out[dst + "bias"] = flat[src + "bias"]
            conv_index += 1
        src, dst = f"synthesis.b{r}.torgb.", f"to_images.{i}."
        out[dst + "affine.weight"] = flat[src + "affine.weight"]
        out[dst + "affine.bias"] = flat[src + "affine.bias"]
        out[dst + "conv.weight"] = flat[src + "weight"]
        out[dst + "conv.resample_filter"] = fir_filter()
        out[dst + "bias"] = flat[src + "bias"]
    out["resample_filter"] = fir_filter()
    return out


def nvidia_generator_config(state: dict[str, torch.Tensor], conv_clamp: float | None = None
                            ) -> dict:
    """The :class:`StyleGAN2Generator` arguments that fit a converted ``state`` (from shapes).

    ``conv_clamp`` is not in the weights (:func:`load_stylegan` reads it from the pickle's
    layers; NVIDIA's mixed-precision models use 256).
    """
    mapping = [k for k in state if re.fullmatch(r"mapping\.layers\.\d+\.weight", k)]
    to_images = sorted(int(k.split(".")[1]) for k in state
                       if re.fullmatch(r"to_images\.\d+\.bias", k))
    resolution = 4 * 2 ** (len(to_images) - 1)
    widths = {4 * 2 ** i: state[f"to_images.{i}.conv.weight"].shape[1] for i in to_images}
    channel_max = max(widths.values())
    # smallest channel_base that reproduces every width: min(base // r, max) == width
    base = max(w * r for r, w in widths.items() if w < channel_max) if any(
        w < channel_max for w in widths.values()) else channel_max * resolution
    return dict(resolution=resolution, channels=state[f"to_images.{to_images[0]}.bias"].shape[0],
                z_dim=state["mapping.layers.0.weight"].shape[1],
                w_dim=state["mapping.w_avg"].shape[0], mapping_layers=len(mapping),
                channel_base=base, channel_max=channel_max, conv_clamp=conv_clamp)
