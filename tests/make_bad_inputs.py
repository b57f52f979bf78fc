"""Write the bad-input corpus of ``tests/test_bad_inputs.py``: small files, made on the fly.

Nothing here is committed as binary data: every photo and checkpoint is generated (a few kB each,
under 1 MB in all), so the corpus is reviewable as code. Run it alone to look at the files:

    python tests/make_bad_inputs.py /tmp/corpus
"""

from __future__ import annotations

import io
import pickle
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

SIDE = 40  # photos are small: every command finishes in well under a second per photo


def _gray(seed: int = 0, h: int = SIDE, w: int = SIDE + 8) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ramp = np.linspace(30, 220, w)[None, :] * np.ones((h, 1))
    return np.clip(ramp + rng.normal(0, 15, (h, w)), 0, 255).astype(np.uint8)


def good_photo(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(_gray(seed), "L").save(path)
    return path


def _png_bytes(img: Image.Image, **kwargs) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format="PNG", **kwargs)
    return buffer.getvalue()


def bad_images(folder: Path) -> dict[str, Path]:
    """Unusable image files, by case name (each refused with a clear message)."""
    folder.mkdir(parents=True, exist_ok=True)
    good = _png_bytes(Image.fromarray(_gray(), "L"))
    jpeg = io.BytesIO()
    Image.fromarray(_gray(), "L").save(jpeg, format="JPEG")
    files = {
        "text_named_png": ("text.png", b"not an image, just text\n"),
        "empty_file": ("empty.png", b""),
        "truncated_png": ("truncated.png", good[: len(good) // 2]),
        "truncated_jpeg": ("truncated.jpg", jpeg.getvalue()[:200]),
        "png_header_only": ("header.png", good[:33]),
        "garbage_bmp": ("garbage.bmp", b"BM" + b"\xff" * 60),
        "html_named_jpg": ("page.jpg", b"<html><body>404 not found</body></html>"),
    }
    out = {}
    for case, (name, data) in files.items():
        (folder / name).write_bytes(data)
        out[case] = folder / name
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / "tiny.png")
    out["too_small"] = folder / "tiny.png"
    Image.fromarray(np.zeros((500, 1), np.uint8)).save(folder / "sliver.png")
    out["one_pixel_wide"] = folder / "sliver.png"
    Image.new("1", (9000, 9000)).save(folder / "inflates_81mp.png")    # a few kB on disk
    out["inflates_81mp"] = folder / "inflates_81mp.png"
    Image.new("1", (12000, 11000)).save(folder / "inflates_132mp.png")
    out["inflates_132mp"] = folder / "inflates_132mp.png"
    return out


def odd_images(folder: Path) -> dict[str, Path]:
    """Usable but unusual files, by case name (each restored, none dropped)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    pages = [Image.fromarray(_gray(i), "L") for i in range(3)]
    pages[0].save(folder / "pages.tif", save_all=True, append_images=pages[1:])
    out["multi_page_tiff"] = folder / "pages.tif"
    frames = [Image.fromarray(_gray(i), "L").convert("P") for i in range(4)]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:], duration=100)
    out["animated_gif"] = folder / "animated.gif"
    frames[0].save(folder / "animated.png", save_all=True, append_images=frames[1:2])
    out["animated_png"] = folder / "animated.png"
    Image.fromarray(_gray().astype(np.float32) / 255, "F").save(folder / "float.tif")
    out["mode_f_tiff"] = folder / "float.tif"
    weird = _gray().astype(np.float32) * 40.0
    weird[0, :4] = [np.nan, np.inf, -np.inf, -5.0]
    Image.fromarray(weird, "F").save(folder / "float_nan.tif")
    out["mode_f_nan_inf"] = folder / "float_nan.tif"
    Image.fromarray(_gray().astype(np.int32) * 300, "I").save(folder / "int32.tif")
    out["mode_i_32bit"] = folder / "int32.tif"
    Image.fromarray(_gray().astype(np.uint16) * 257).save(folder / "sixteen.png")
    out["png_16bit"] = folder / "sixteen.png"
    rgba = Image.fromarray(np.dstack([_gray(1)] * 3 + [_gray(2)]), "RGBA")
    rgba.save(folder / "alpha.png")
    out["rgba"] = folder / "alpha.png"
    Image.fromarray(np.dstack([_gray(3)] * 3), "RGB").convert("CMYK").save(folder / "cmyk.jpg")
    out["cmyk_jpeg"] = folder / "cmyk.jpg"
    palette = Image.fromarray(_gray(4), "L").convert("P")
    palette.save(folder / "palette.png", transparency=0)
    out["palette_transparency"] = folder / "palette.png"
    Image.fromarray(_gray(5), "L").save(folder / "png_inside.jpg", format="PNG")
    out["png_named_jpg"] = folder / "png_inside.jpg"
    Image.fromarray(_gray(6), "L").save(folder / "unicode fötó ✓.png")
    out["unicode_name"] = folder / "unicode fötó ✓.png"
    exif = Image.Exif()
    exif[0x0112] = 6                                          # rotated 90 degrees
    Image.fromarray(_gray(7, 40, 64), "L").save(folder / "rotated.jpg", exif=exif)
    out["exif_rotated"] = folder / "rotated.jpg"
    return out


# ---------------------------------------------------------------- checkpoints


class Evil:
    """Pickles as a call to ``print``: a checkpoint that would run code if unpickled fully."""

    def __reduce__(self):
        return (print, ("this code must not run",))


def _tiny_unet():
    from repair.nets import UNetGenerator

    return UNetGenerator(ngf=4, depth=2)


def _release(path: Path, generator) -> Path:
    from repair.checkpoint import save_checkpoint

    save_checkpoint(path, {"kind": "release", "generator": generator})
    return path


def good_checkpoint(path: Path) -> Path:
    from repair.checkpoint import net_record

    return _release(path, net_record(_tiny_unet()))


def bad_checkpoints(folder: Path) -> dict[str, Path]:
    """Malformed generator checkpoints, by case name (each refused by the schema check)."""
    from repair.checkpoint import FORMAT, net_record, save_checkpoint

    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}

    def record(**change):
        rec = net_record(_tiny_unet())
        rec.update(change)
        return rec

    def weights(edit):
        rec = record()
        edit(rec["state_dict"])
        return rec

    first = next(iter(net_record(_tiny_unet())["state_dict"]))
    releases = {
        "missing_generator": None,
        "generator_not_a_table": [1, 2, 3],
        "missing_state_dict": {k: v for k, v in record().items() if k != "state_dict"},
        "unknown_arch": record(arch="transformer-xxl"),
        "unknown_hparam": record(hparams={"ngf": 4, "depth": 2, "flux_capacitor": 1}),
        "absurd_hparam": record(hparams={"ngf": 4_000_000, "depth": 2}),
        "absurd_depth": record(hparams={"ngf": 4, "depth": 10_000}),
        "hparam_wrong_type": record(hparams={"ngf": "wide", "depth": 2}),
        "hparam_nan": record(hparams={"ngf": float("nan"), "depth": 2}),
        "wrong_shape": weights(lambda sd: sd.__setitem__(first, torch.zeros(3, 3))),
        "missing_weight": weights(lambda sd: sd.pop(first)),
        "extra_weight": weights(lambda sd: sd.__setitem__("surprise", torch.zeros(1))),
        "weight_not_tensor": weights(lambda sd: sd.__setitem__(first, [0.0] * 9)),
        "nan_weights": weights(lambda sd: sd[first].fill_(float("nan"))),
        "inf_weights": weights(lambda sd: sd[first].fill_(float("inf"))),
        "state_dict_a_list": record(state_dict=[1, 2]),
    }
    for case, generator in releases.items():
        payload = {"kind": "release"} if generator is None else \
            {"kind": "release", "generator": generator}
        save_checkpoint(folder / f"{case}.pt", payload)
        out[case] = folder / f"{case}.pt"
    (folder / "text.pt").write_text("not a checkpoint\n")
    out["text_file"] = folder / "text.pt"
    (folder / "empty.pt").write_bytes(b"")
    out["empty_file"] = folder / "empty.pt"
    data = (good_checkpoint(folder / "_good.pt")).read_bytes()
    (folder / "truncated.pt").write_bytes(data[: len(data) // 2])
    out["truncated"] = folder / "truncated.pt"
    torch.save(_tiny_unet().state_dict(), folder / "bare_state_dict.pt")
    out["foreign_state_dict"] = folder / "bare_state_dict.pt"
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "version": 1, "kind": "release", "x": Evil()}, buffer)
    (folder / "runs_code.pt").write_bytes(buffer.getvalue())
    out["pickled_code"] = folder / "runs_code.pt"
    save_checkpoint(folder / "future.pt", {"kind": "release", "generator": record()})
    payload = torch.load(folder / "future.pt", weights_only=True)
    payload["version"] = 99
    torch.save(payload, folder / "future.pt")
    out["future_version"] = folder / "future.pt"
    (folder / "_good.pt").unlink()
    return out


def bad_training_states(folder: Path, good_last: Path) -> dict[str, Path]:
    """Damaged copies of a real ``last.pt`` (a full training state), by case name."""
    folder.mkdir(parents=True, exist_ok=True)
    payload = torch.load(good_last, weights_only=True)
    edits = {
        "release_not_full": lambda p: p.update(kind="release"),
        "missing_opt_G": lambda p: p.pop("opt_G"),
        "malformed_opt_G": lambda p: p.update(opt_G={"nothing": 1}),
        "negative_step": lambda p: p.update(global_step=-3),
        "missing_rng": lambda p: p.pop("rng"),
        "discriminator_wrong_shape": lambda p: next(iter(p["discriminator"]["state_dict"].values()))
        .resize_(1),
    }
    out = {}
    for case, edit in edits.items():
        copy = pickle.loads(pickle.dumps(payload))
        edit(copy)
        (folder / case).mkdir(parents=True, exist_ok=True)
        torch.save(copy, folder / case / "last.pt")
        out[case] = folder / case / "last.pt"
    return out


class _Reduce:
    """Pickles as ``func(*args)``: how a pickle makes a call while it is read."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


def odd_nvidia_pickles(folder: Path) -> dict[str, Path]:
    """stylegan2-ada-pytorch-like pickles with odd contents, by case name (no NVIDIA code)."""
    import collections
    import types

    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    # a safe-listed constructor called with nonsense: TypeError while the pickle is read
    (folder / "type_error.pkl").write_bytes(pickle.dumps(
        {"G_ema": _Reduce(collections.OrderedDict, (5,))}))
    out["type_error"] = folder / "type_error.pkl"
    # modules nested 5000 deep: the converter's walk over them runs out of recursion
    persistence = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):  # pragma: no cover - never called here
        raise AssertionError("NVIDIA code must not run")

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    names = ("torch_utils", "torch_utils.persistence")
    saved = {name: sys.modules.get(name) for name in names}
    sys.modules.update({"torch_utils": types.ModuleType("torch_utils"),
                        "torch_utils.persistence": persistence})
    limit = sys.getrecursionlimit()
    try:
        sys.setrecursionlimit(100_000)
        node = None
        for depth in range(5000):
            state = {"_parameters": {}, "_buffers": {},
                     "_modules": {"child": node} if node is not None else {}}
            node = _Reduce(_reconstruct_persistent_obj,
                           ({"type": "class", "class_name": f"Block{depth}", "state": state},))
        (folder / "recursion.pkl").write_bytes(pickle.dumps({"G_ema": node}))
    finally:
        sys.setrecursionlimit(limit)
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    out["recursion_error"] = folder / "recursion.pkl"
    (folder / "a_list.pkl").write_bytes(pickle.dumps([1, 2, 3]))
    out["not_a_dict"] = folder / "a_list.pkl"
    (folder / "text.pkl").write_text("not a pickle\n")
    out["text_file"] = folder / "text.pkl"
    return out


def bad_stylegan_files(folder: Path) -> dict[str, Path]:
    """Generator files of ``repair.stylegan_io`` with malformed contents, by case name."""
    from repair import stylegan_io
    from repair.stylegan import StyleGAN2Generator

    save_generator = getattr(stylegan_io, "save_stylegan", None) or stylegan_io.save_generator

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    net_G = StyleGAN2Generator(16, 1, z_dim=16, w_dim=16, mapping_layers=2, channel_base=128,
                               channel_max=16)
    good = save_generator(net_G, folder / "_good.pt")
    payload = torch.load(good, weights_only=True)
    first = next(iter(payload["state_dict"]))
    edits = {
        "nan_weights": lambda p: p["state_dict"][first].fill_(float("nan")),
        "unknown_config": lambda p: p["config"].update(warp_drive=True),
        "wrong_shape": lambda p: p["state_dict"].__setitem__(first, torch.zeros(2)),
    }
    out = {}
    for case, edit in edits.items():
        copy = pickle.loads(pickle.dumps(payload))
        edit(copy)
        torch.save(copy, folder / f"{case}.pt")
        out[case] = folder / f"{case}.pt"
    buffer = io.BytesIO()
    torch.save({**payload, "x": Evil()}, buffer)
    (folder / "runs_code.pt").write_bytes(buffer.getvalue())
    out["pickled_code"] = folder / "runs_code.pt"
    good.unlink()
    return out


def build(root: Path) -> dict[str, dict[str, Path]]:
    """The whole corpus under ``root``, ``{kind: {case: path}}``."""
    return {"bad_images": bad_images(root / "bad_images"),
            "odd_images": odd_images(root / "odd_images"),
            "bad_checkpoints": bad_checkpoints(root / "bad_checkpoints"),
            "odd_nvidia_pickles": odd_nvidia_pickles(root / "nvidia"),
            "bad_stylegan_files": bad_stylegan_files(root / "stylegan")}


if __name__ == "__main__":
    for kind, cases in build(Path(sys.argv[1] if len(sys.argv) > 1 else "bad_inputs")).items():
        print(f"{kind}: {len(cases)} files")
