"""``repair train`` and ``python -m repair.train``: the command line around :func:`repair.train.fit`.

Also the pieces a command line needs and a notebook does not: joining a torchrun process group
(``torchrun --nproc_per_node N -m repair.train ...`` wraps both networks in
DistributedDataParallel), starting the generator from a checkpoint (fine-tuning), and stopping
cleanly on Ctrl-C. The options themselves and their checks live in :mod:`repair.train_options_cli`.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from repair.damage import MIXES
from repair.images import atomic_write_bytes
from repair.recipes import get_recipe, widths
from repair.restorer_train import train_only
from repair.callbacks import Checkpointer, HistoryWriter, TimeLimit, load_state
from repair.nets import unwrap as _plain
from repair.train import Callback, TrainState, fit, new_state, pick_device
from repair.train_options_cli import RUN_FILES, add_train_arguments, check_train_arguments

__all__ = ["init_generator", "run_train", "run_restorer", "main", "wrap_ddp", "GracefulStop",
           "clean_stale_checkpoint_temporaries"]


def _distributed(device: torch.device) -> tuple[int, int, torch.device]:
    """Join the process group when launched by torchrun; return (rank, world, device)."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, device
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return dist.get_rank(), dist.get_world_size(), device


def wrap_ddp(state: TrainState, device: torch.device) -> None:
    """Wrap ``state``'s networks in DistributedDataParallel (gradients averaged over processes)."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [device.index] if device.type == "cuda" else None
    state.net_G = DDP(state.net_G, device_ids=ids)
    if state.net_D is not None:
        state.net_D = DDP(state.net_D, device_ids=ids)


def init_generator(state: TrainState, path: str | os.PathLike) -> None:
    """Copy the generator weights of a checkpoint into ``state`` (fine-tuning).

    Raises:
        ValueError: the checkpoint's generator has another architecture than the recipe's.
    """
    from repair.checkpoint import load_generator

    source = load_generator(path, eval_mode=False)
    target = _plain(state.net_G)
    mine, theirs = getattr(target, "hparams", {}), getattr(source, "hparams", {})
    grown = _grown_branches(mine, theirs)   # branches that start at zero may be added

    def kept(hparams: dict) -> dict:   # hparams of the branches grown here left out
        return {k: v for k, v in hparams.items() if k.split("_")[0] not in grown.values()}
    if type(source) is not type(target) or kept(mine) != kept(theirs):
        raise ValueError(f"{path}: its generator is {type(source).__name__}{theirs}, but this "
                         f"recipe trains {type(target).__name__}{mine}; pick a checkpoint of the "
                         f"same recipe and widths (e.g. --recipe and --profile as it was trained)"
                         + "".join(f", and --{k.replace('_', '-')} as it has" for k in _ZERO_BRANCHES
                                   if theirs.get(k) and not mine.get(k)))
    missing, unexpected = target.load_state_dict(source.state_dict(), strict=False)
    stray = [k for k in missing if k.split(".")[0] not in grown.values()] + list(unexpected)
    if stray:
        raise ValueError(f"{path}: its weights do not fit this network ({', '.join(stray[:4])})")
    state.settings["init"] = str(path)


_ZERO_BRANCHES = {"sharpen_branch": "sharpen"}
"""Hyper-parameters that add a branch starting at zero, and the branch's module name: a
checkpoint without the branch starts the bigger network exactly where it was."""


def _grown_branches(mine: dict, theirs: dict) -> dict[str, str]:
    return {k: m for k, m in _ZERO_BRANCHES.items() if mine.get(k) and not theirs.get(k)}


def clean_stale_checkpoint_temporaries(out: Path) -> int:
    """Remove the temporary files a run killed while saving (SIGKILL) left in ``out``."""
    from repair.images import clean_stale_temporaries

    names = [*RUN_FILES, "steps.csv", "epochs.csv", *(p.name for p in out.glob("epoch_*.pt"))]
    removed = clean_stale_temporaries([out / n for n in names])
    if removed:
        print(f"removed {removed} temporary file(s) that an interrupted save left in {out}")
    return removed


class GracefulStop:
    """Context manager: the first Ctrl-C (or SIGTERM) ends training after the current step, with
    ``OUT/last.pt`` saved by the checkpointer as usual; a second one stops at once."""

    def __init__(self, state: TrainState, out: Path):
        self.state, self.out, self.requested, self.saved = state, out, False, {}

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested, self.state.stop = True, True
        print(f"\nrepair train: stopping after this step and saving {self.out / 'last.pt'} "
              "(press Ctrl-C again to quit at once without saving)", flush=True)

    def __enter__(self) -> "GracefulStop":
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.saved[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        import signal

        for sig, handler in self.saved.items():
            signal.signal(sig, handler)


def _interrupted(out: Path) -> int:
    """Exit status 130 with a plain statement of what was (not) saved and how to save."""
    from repair.checkpoint import read_checkpoint

    last = out / "last.pt"
    try:
        step = read_checkpoint(last).get("global_step") if last.exists() else None
    except ValueError:
        step = None
    said = (f"the last save is {last} at step {step}: resume with --resume" if step is not None
            else "nothing was saved")
    print(f"repair train: interrupted before saving; {said}. To stop with a resumable "
          "checkpoint, press Ctrl-C once and wait for the current step; --save-every N also "
          "saves every N steps", flush=True)
    return 130


def _train_data(args: argparse.Namespace, cfg) -> tuple[Any, Any]:
    """The training and validation sets of the GAN recipes (subsets as the options ask)."""
    from torch.utils.data import Subset

    from repair.data import make_datasets

    train_ds, val_ds = make_datasets(cfg, root=args.imagenette or args.data, seed=args.seed,
                                     damage_kwargs=MIXES[args.mix], scale=args.scale,
                                     jitter=args.jitter, val_size=args.val_size)
    if args.num_images and args.num_images < len(train_ds):   # a seeded random subset of photos
        keep = np.sort(np.random.default_rng(args.seed).choice(len(train_ds), args.num_images,
                                                                replace=False))
        train_ds.photos = [train_ds.photos[i] for i in keep]
    if args.val_limit:
        val_ds = Subset(val_ds, range(min(args.val_limit, len(val_ds))))
    return train_ds, val_ds


def _gan_config(args: argparse.Namespace):
    from repair.config import get_config

    overrides: dict[str, Any] = {}
    if args.imagenette:
        overrides.update(source="imagenette", extra={"download": args.download})
    elif args.data:
        overrides["source"] = "folder"
    if args.image_size is not None:
        overrides["image_size"] = args.image_size
    return get_config(args.profile, **overrides)


def _start(state: TrainState, args: argparse.Namespace, out: Path, device, rank: int,
           total: Any = None) -> None:
    """Fine-tune from ``--init`` or resume ``OUT/last.pt`` (``--resume``), as asked."""
    last = out / "last.pt"
    if args.init and not (args.resume and last.exists()):
        init_generator(state, args.init)
    if not args.resume:
        return
    if not last.exists():
        if rank == 0:
            print(f"nothing to resume in {out}: starting afresh")
        return
    load_state(last, state, device)
    if total is not None:
        state.settings["total_steps"] = total  # a resumed run may be given a longer schedule
    if rank == 0 and not args.quiet:
        print(f"resuming {last} at epoch {state.epoch}, step {state.global_step}", flush=True)


def _finish(state: TrainState, out: Path, start: float, quiet: bool, stop: GracefulStop,
            **extra: Any) -> None:
    """Write ``summary.json`` (and say so when a Ctrl-C ended the run early)."""
    summary = {"recipe": state.recipe.name, **extra, "steps": state.global_step,
               "images_seen": state.images_seen, "wall_s": round(time.time() - start, 1),
               "best": state.best}
    atomic_write_bytes(out / "summary.json", json.dumps(summary, indent=1).encode())
    if stop.requested:
        print(f"repair train: stopped early at step {state.global_step}; {out / 'last.pt'} "
              "saved: continue with --resume", flush=True)
    if not quiet:
        print(json.dumps(summary), flush=True)


def run_train(args: argparse.Namespace) -> int:
    """Run ``repair train`` with parsed arguments; returns the exit status (130: interrupted)."""
    out = check_train_arguments(args)
    device = pick_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    changes = {"lr": args.lr, "mask_pos_weight": getattr(args, "mask_pos_weight", None),
               "sharpen_branch": getattr(args, "sharpen_branch", None)}
    recipe = get_recipe(args.recipe, **{k: v for k, v in changes.items() if v is not None})
    try:
        if recipe.generator == "nafnet":
            return run_restorer(args, recipe, out)
        return _run_gan(args, recipe, out, device)
    except KeyboardInterrupt:
        return _interrupted(out)


def _run_gan(args: argparse.Namespace, recipe, out: Path, device: torch.device) -> int:
    """The paper / pix2pix / l1 recipes: epochs over a photo folder or Imagenette."""
    rank, world, device = _distributed(device)
    cfg = _gan_config(args)
    train_ds, val_ds = _train_data(args, cfg)
    batch_size = args.batch_size or recipe.batch_size
    num_epochs = args.epochs or (recipe.num_epochs if cfg.max_steps is None else cfg.num_epochs)
    settings = {"profile": cfg.profile, "source": cfg.source, "data": str(args.imagenette or
                args.data or ""), "batch_size": batch_size, "num_epochs": num_epochs,
                "train_photos": len(train_ds), "val_photos": len(val_ds), "world": world,
                "mix": args.mix, "scale": args.scale, "jitter": args.jitter,
                "epoch_photos": args.epoch_photos, "val_size": args.val_size, "init": args.init}
    state = new_state(recipe, *widths(recipe, cfg.ngf, cfg.ndf), cfg.image_size, device, args.seed,
                      **settings)
    _start(state, args, out, device, rank)
    if world > 1:
        wrap_ddp(state, device)
    callbacks: list[Callback] = []
    if rank == 0:
        clean_stale_checkpoint_temporaries(out)
        callbacks = [HistoryWriter(out), Checkpointer(out, args.save_every, args.keep_epochs)]
    if args.time_limit:
        callbacks.append(TimeLimit(args.time_limit))
    start = time.time()
    max_steps = args.max_steps if args.max_steps is not None else cfg.max_steps
    with GracefulStop(state, out) as stop:
        fit(state, train_ds, val_ds, num_epochs=num_epochs, batch_size=batch_size,
            max_steps=max_steps, max_images=args.max_images, device=device,
            amp=not args.no_amp, num_workers=cfg.num_workers if args.workers is None
            else args.workers, seed=args.seed, callbacks=callbacks, progress=not args.quiet,
            rank=rank, world=world, epoch_size=args.epoch_photos)
    if rank == 0:
        _finish(state, out, start, args.quiet, stop, epochs=state.epoch)
    if world > 1:
        import torch.distributed as dist
        dist.barrier()
        dist.destroy_process_group()
    return 0


def _restorer_photos(cfg, folder: str | None, min_side: int = 0) -> tuple[list, list]:
    from repair.data import skimage_photos, split_files
    from repair.synth import large_enough, training_photos

    if cfg.source == "skimage" and folder is None:
        photos = large_enough(skimage_photos(), min_side)
        return split_files(photos[:cfg.num_images] if cfg.num_images else photos, 0.25, 0)
    # the validation carve-out never moves with --seed
    return training_photos(folder, seed=0, min_side=min_side)


def run_restorer(args: argparse.Namespace, recipe, out: Path | None = None) -> int:
    """``repair train --recipe restorer``: step-based training on fresh damage every step."""
    from repair.config import get_config
    from repair.restorer_train import Schedule, fit_restorer
    from repair.synth import CLEAN_SHARE, RestraintPairs, fixed_pairs

    if args.imagenette:
        raise ValueError("--imagenette: the restorer recipe trains on a folder (--data), "
                         "not on Imagenette")
    out = out or check_train_arguments(args)
    cfg = get_config(args.profile)
    crop = args.image_size or (cfg.image_size if cfg.profile == "tiny" else 128)
    total = args.max_steps or cfg.max_steps or 300
    schedule = Schedule(total_steps=total, crop=crop, final_crop=args.final_size or max(crop, 256)
                        if cfg.profile != "tiny" else crop, val_every=args.val_every,
                        warmup=min(100, max(total // 10, 1)))
    train_photos, val_photos = _restorer_photos(cfg, args.data, args.min_side)
    if args.val_limit:
        val_photos = val_photos[:args.val_limit]
    val_size = args.val_size or (schedule.final_crop if cfg.profile != "tiny" else crop)
    clean_share = CLEAN_SHARE if args.clean_share is None else args.clean_share
    pairs = RestraintPairs(train_photos, seed=args.seed, single_share=args.single_share,
                           decoy_share=args.decoy_share, clean_share=clean_share)
    val = fixed_pairs(val_photos, size=val_size, seed=args.seed)
    settings = {"profile": cfg.profile, "data": str(args.data or ""), "crop": crop,
                "final_crop": schedule.final_crop, "total_steps": total,
                "batch_size": args.batch_size or recipe.batch_size,
                "train_photos": len(train_photos), "val_photos": len(val_photos),
                "val_size": val_size, "init": args.init, "single_share": args.single_share,
                "decoy_share": args.decoy_share, "clean_share": clean_share,
                "mask_pos_weight": recipe.mask_pos_weight, "min_side": args.min_side,
                "train_only": getattr(args, "train_only", None)}
    state = new_state(recipe, *widths(recipe, cfg.ngf, cfg.ndf), crop, "cpu", args.seed,
                      **settings)
    _start(state, args, out, "cpu", 0, total)
    train_only(_plain(state.net_G), state.settings.get("train_only"))
    clean_stale_checkpoint_temporaries(out)
    callbacks: list[Callback] = [HistoryWriter(out),
                                 Checkpointer(out, args.save_every or 50, args.keep_epochs)]
    if args.time_limit:
        callbacks.append(TimeLimit(args.time_limit))
    start = time.time()
    log = None if args.quiet else (lambda line: print(line, flush=True))
    with GracefulStop(state, out) as stop:
        fit_restorer(state, pairs, val, schedule, args.batch_size, callbacks, log)
    _finish(state, out, start, args.quiet, stop, total_steps=total)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m repair.train``: the same options as ``repair train``."""
    parser = add_train_arguments(argparse.ArgumentParser(
        prog="python -m repair.train", description="Train a restoration GAN (chapter 03)."))
    return run_train(parser.parse_args(argv))
