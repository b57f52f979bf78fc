"""Local stand-ins, in the same formats, for what the real code downloads: an Imagenette folder and
an NVIDIA stylegan2-ada-pytorch pickle. Shared by the unit tests and the paper-profile runs."""

from __future__ import annotations

import pickle
import sys
import types
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from repair.stylegan import StyleGAN2Generator

IMAGENETTE_CLASSES = ("n01440764", "n03028079")


def fake_imagenette(root: Path, counts: dict[str, int], shape: tuple[int, ...] = (40, 50, 3)) -> Path:
    """``root/imagenette2/{split}/<wnid>/*.JPEG`` as torchvision unpacks it: ``counts[split]``
    random colour JPEGs per class."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in counts.items():
        for wnid in IMAGENETTE_CLASSES:
            folder = root / "imagenette2" / split / wnid
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(
                    folder / f"{wnid}_{i}.JPEG", format="JPEG")
    return root


def _nvidia_tree(net_G: StyleGAN2Generator) -> dict:
    """NVIDIA's parameter names (stylegan2-ada-pytorch) for our generator's tensors."""
    sd = net_G.state_dict()
    names = {"mapping.w_avg": sd["mapping.w_avg"], "synthesis.b4.const": sd["const"]}
    for i in range(len(net_G.mapping.layers)):
        names[f"mapping.fc{i}.weight"] = sd[f"mapping.layers.{i}.weight"]
        names[f"mapping.fc{i}.bias"] = sd[f"mapping.layers.{i}.bias"]
    conv = 0
    for i in range(len(net_G.to_images)):
        r = 4 * 2 ** i
        for layer in (["conv0", "conv1"] if r > 4 else ["conv1"]):
            ours, theirs = f"convs.{conv}.", f"synthesis.b{r}.{layer}."
            for a, b in (("affine.weight", "affine.weight"), ("affine.bias", "affine.bias"),
                         ("conv.weight", "weight"), ("noise_const", "noise_const"),
                         ("noise_strength", "noise_strength"), ("bias", "bias"),
                         ("conv.resample_filter", "resample_filter")):
                names[theirs + b] = sd[ours + a]
            conv += 1
        for a, b in (("affine.weight", "affine.weight"), ("affine.bias", "affine.bias"),
                     ("conv.weight", "weight"), ("bias", "bias")):
            names[f"synthesis.b{r}.torgb.{b}"] = sd[f"to_images.{i}.{a}"]
    return names


class _FakeModule:
    """Pickles like a torch_utils.persistence object: (reconstruct, ({state...},))."""

    def __init__(self, class_name, state):
        self.class_name, self.state = class_name, state

    def __reduce__(self):
        meta = {"type": "class", "version": 6, "module_src": "raise SystemExit('never run')",
                "class_name": self.class_name, "state": self.state}
        return (sys.modules["torch_utils.persistence"]._reconstruct_persistent_obj, (meta,))


def _module_state(params: dict, buffers: dict, children: dict, **attrs) -> dict:
    return {"training": False, "_parameters": OrderedDict(params), "_buffers": OrderedDict(buffers),
            "_non_persistent_buffers_set": set(), "_modules": OrderedDict(children), **attrs}


def _build_tree(flat: dict, prefix: str = ""):
    """Nest flat NVIDIA names into fake persistent modules (parameters and buffers as NVIDIA's)."""
    children, params, buffers = {}, {}, {}
    for name in {k[len(prefix):].split(".")[0] for k in flat if k.startswith(prefix)}:
        full = prefix + name
        if full in flat:
            is_buffer = name in ("w_avg", "noise_const", "resample_filter")
            value = flat[full].clone()
            (buffers if is_buffer else params)[name] = value if is_buffer else \
                torch.nn.Parameter(value, requires_grad=False)
        else:
            children[name] = _build_tree(flat, full + ".")
    name = prefix.rstrip(".").split(".")[-1]
    attrs = {"conv_clamp": 256} if name in ("conv0", "conv1", "torgb") else {}
    return _FakeModule(name or "Generator", _module_state(params, buffers, children, **attrs))


def write_nvidia_pickle(net_G: StyleGAN2Generator, path: Path, resolution: int | None = None) -> Path:
    """Save ``net_G`` as a .pkl shaped like stylegan2-ada-pytorch's, made with stand-in NVIDIA
    modules that are removed again before returning (so a loader cannot use them)."""
    package = types.ModuleType("torch_utils")
    persistence = types.ModuleType("torch_utils.persistence")
    dnnlib, util = types.ModuleType("dnnlib"), types.ModuleType("dnnlib.util")

    def _reconstruct_persistent_obj(meta):  # pragma: no cover - never called
        raise AssertionError("NVIDIA code must not run")

    class EasyDict(dict):
        pass

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    EasyDict.__module__, EasyDict.__qualname__ = "dnnlib.util", "EasyDict"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    util.EasyDict = EasyDict
    saved = {k: sys.modules.get(k) for k in ("torch_utils", "torch_utils.persistence", "dnnlib",
                                             "dnnlib.util")}
    sys.modules.update({"torch_utils": package, "torch_utils.persistence": persistence,
                        "dnnlib": dnnlib, "dnnlib.util": util})
    try:
        tree = _build_tree(_nvidia_tree(net_G))
        data = {"G": tree, "D": _FakeModule("Discriminator", _module_state({}, {}, {})),
                "G_ema": tree, "augment_pipe": None,
                "training_set_kwargs": EasyDict(path="ffhq.zip",
                                                resolution=resolution or net_G.resolution)}
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            pickle.dump(data, f)
    finally:
        for key, module in saved.items():
            if module is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = module
    return path
