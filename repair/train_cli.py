"""``repair train`` and ``python -m repair.train``: the command line around :func:`repair.train.fit`.

Also the pieces a command line needs and a notebook does not: joining a torchrun process group
(``torchrun --nproc_per_node N -m repair.train ...`` wraps both networks in
DistributedDataParallel) and starting the generator from a checkpoint (fine-tuning).
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
from repair.recipes import RECIPES, get_recipe, widths
from repair.callbacks import Checkpointer, HistoryWriter, TimeLimit, load_state
from repair.nets import unwrap as _plain
from repair.train import Callback, TrainState, fit, new_state, pick_device

__all__ = ["add_train_arguments", "init_generator", "run_train", "main", "wrap_ddp"]


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


def add_train_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``repair train``'s options to a parser."""
    p.add_argument("--recipe", default="paper", choices=list(RECIPES),
                   help="paper (the paper exactly), pix2pix (U-Net + PatchGAN), l1 (U-Net, L1 "
                        "only) or paper-logit (paper with the discriminator head fixed)")
    p.add_argument("--profile", default=None, help="tiny, book or paper (default: $REPAIR_PROFILE "
                                                   "or book); sets widths, crop size, data source")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--data", help="folder of clean photos (default: the profile's source)")
    source.add_argument("--imagenette", metavar="ROOT", help="train on Imagenette under ROOT")
    p.add_argument("--download", action="store_true", help="download Imagenette if missing")
    p.add_argument("--epochs", type=int, help="number of epochs (default: the recipe's)")
    p.add_argument("--batch-size", type=int, help="batch size per process (default: the recipe's)")
    p.add_argument("--image-size", type=int, help="crop size (default: the profile's)")
    p.add_argument("--lr", type=float, help="learning rate (default: the recipe's)")
    p.add_argument("--max-steps", type=int, help="stop after this many steps")
    p.add_argument("--max-images", type=int, help="stop after this many training images")
    p.add_argument("--num-images", type=int,
                   help="train on a seeded random N of the training photos")
    p.add_argument("--epoch-photos", type=int, metavar="N",
                   help="each epoch visits a fresh seeded random N of the training photos")
    p.add_argument("--val-limit", type=int, help="validate on the first N validation photos")
    p.add_argument("--val-size", type=int, help="side of the validation crops (default: "
                                                "the training crop size)")
    p.add_argument("--scale", type=float, nargs=2, metavar=("LOW", "HIGH"),
                   help="shrink training photos by a random factor in [LOW, HIGH] before "
                        "cropping (e.g. 0.5 1: photos resized for the network)")
    p.add_argument("--jitter", action="store_true",
                   help="vary the damage per pair: each damage off 1 time in 4, else 0.5-1.5x")
    p.add_argument("--mix", default="paper", choices=list(MIXES),
                   help="damage mix: the paper's four damages, or those plus plate damages")
    p.add_argument("--init", metavar="CHECKPOINT",
                   help="fine-tune: start the generator from this checkpoint's weights")
    p.add_argument("--out", default="runs/train", help="output folder (checkpoints, history)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 or mps")
    p.add_argument("--no-amp", action="store_true", help="no mixed precision on CUDA")
    p.add_argument("--threads", type=int, help="CPU threads (torch.set_num_threads)")
    p.add_argument("--workers", type=int, help="data loader workers (default: the profile's)")
    p.add_argument("--seed", type=int, default=0, help="seed of weights, data order and damage")
    p.add_argument("--time-limit", type=float, metavar="SECONDS",
                   help="stop cleanly after this many seconds (checkpoint saved)")
    p.add_argument("--save-every", type=int, help="also save OUT/last.pt every N steps")
    p.add_argument("--keep-epochs", action="store_true", help="keep one checkpoint per epoch")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--val-every", type=int, default=250, metavar="N",
                   help="restorer recipe: validate (and keep the best) every N steps")
    p.add_argument("--final-size", type=int, metavar="N",
                   help="restorer recipe: crop side of the last 20%% of the steps (default 256, "
                        "or the crop size if larger)")
    return p


def init_generator(state: TrainState, path: str | os.PathLike) -> None:
    """Copy the generator weights of a checkpoint into ``state`` (fine-tuning).

    Raises:
        ValueError: the checkpoint's generator has another architecture than the recipe's.
    """
    from repair.checkpoint import load_generator

    source = load_generator(path, eval_mode=False)
    target = _plain(state.net_G)
    mine, theirs = getattr(target, "hparams", {}), getattr(source, "hparams", {})
    if type(source) is not type(target) or mine != theirs:
        raise ValueError(f"{path}: its generator is {type(source).__name__}{theirs}, but this "
                         f"recipe trains {type(target).__name__}{mine}; pick a checkpoint of the "
                         f"same recipe and widths (e.g. --recipe and --profile as it was trained)")
    target.load_state_dict(source.state_dict())
    state.settings["init"] = str(path)


def run_train(args: argparse.Namespace) -> int:
    """Run ``repair train`` with parsed arguments; returns the exit status."""
    from torch.utils.data import Subset

    from repair.config import get_config
    from repair.data import make_datasets

    if args.threads:
        torch.set_num_threads(args.threads)
    recipe = get_recipe(args.recipe, **({"lr": args.lr} if args.lr else {}))
    if recipe.generator == "nafnet":
        return run_restorer(args, recipe)
    device = pick_device(args.device)
    rank, world, device = _distributed(device)
    overrides: dict[str, Any] = {}
    if args.imagenette:
        overrides.update(source="imagenette", extra={"download": args.download})
    elif args.data:
        overrides["source"] = "folder"
    if args.image_size is not None:
        overrides["image_size"] = args.image_size
    cfg = get_config(args.profile, **overrides)
    train_ds, val_ds = make_datasets(cfg, root=args.imagenette or args.data, seed=args.seed,
                                     damage_kwargs=MIXES[args.mix], scale=args.scale,
                                     jitter=args.jitter, val_size=args.val_size)
    if args.num_images and args.num_images < len(train_ds):   # a seeded random subset of photos
        keep = np.sort(np.random.default_rng(args.seed).choice(len(train_ds), args.num_images,
                                                                replace=False))
        train_ds.photos = [train_ds.photos[i] for i in keep]
    if args.val_limit:
        val_ds = Subset(val_ds, range(min(args.val_limit, len(val_ds))))
    out = Path(args.out)
    batch_size = args.batch_size or recipe.batch_size
    num_epochs = args.epochs or (recipe.num_epochs if cfg.max_steps is None else cfg.num_epochs)
    settings = {"profile": cfg.profile, "source": cfg.source, "data": str(args.imagenette or
                args.data or ""), "batch_size": batch_size, "num_epochs": num_epochs,
                "train_photos": len(train_ds), "val_photos": len(val_ds), "world": world,
                "mix": args.mix, "scale": args.scale, "jitter": args.jitter,
                "epoch_photos": args.epoch_photos, "val_size": args.val_size, "init": args.init}
    state = new_state(recipe, *widths(recipe, cfg.ngf, cfg.ndf), cfg.image_size, device, args.seed,
                      **settings)
    if args.init and not (args.resume and (out / "last.pt").exists()):
        init_generator(state, args.init)
    if args.resume:
        if (out / "last.pt").exists():
            load_state(out / "last.pt", state, device)
            if rank == 0 and not args.quiet:
                print(f"resuming {out / 'last.pt'} at epoch {state.epoch}, step "
                      f"{state.global_step}")
        elif rank == 0:
            print(f"nothing to resume in {out}: starting afresh")
    if world > 1:
        wrap_ddp(state, device)
    callbacks: list[Callback] = []
    if rank == 0:
        callbacks = [HistoryWriter(out), Checkpointer(out, args.save_every, args.keep_epochs)]
    if args.time_limit:
        callbacks.append(TimeLimit(args.time_limit))
    start = time.time()
    max_steps = args.max_steps if args.max_steps is not None else cfg.max_steps
    fit(state, train_ds, val_ds, num_epochs=num_epochs, batch_size=batch_size,
        max_steps=max_steps, max_images=args.max_images, device=device,
        amp=not args.no_amp, num_workers=cfg.num_workers if args.workers is None else args.workers,
        seed=args.seed, callbacks=callbacks, progress=not args.quiet, rank=rank, world=world,
        epoch_size=args.epoch_photos)
    if rank == 0:
        best = state.best
        summary = {"recipe": recipe.name, "epochs": state.epoch, "steps": state.global_step,
                   "images_seen": state.images_seen, "wall_s": round(time.time() - start, 1),
                   "best": best}
        atomic_write_bytes(out / "summary.json", json.dumps(summary, indent=1).encode())
        if not args.quiet:
            print(json.dumps(summary))
    if world > 1:
        import torch.distributed as dist
        dist.barrier()
        dist.destroy_process_group()
    return 0


def _restorer_photos(cfg, folder: str | None, seed: int) -> tuple[list, list]:
    from repair.data import skimage_photos, split_files
    from repair.synth import training_photos

    if cfg.source == "skimage" and folder is None:
        photos = skimage_photos()
        return split_files(photos[:cfg.num_images] if cfg.num_images else photos, 0.25, 0)
    return training_photos(folder, seed=0)  # the validation carve-out never moves with --seed


def run_restorer(args: argparse.Namespace, recipe) -> int:
    """``repair train --recipe restorer``: step-based training on fresh damage every step."""
    from repair.config import get_config
    from repair.restorer_train import Schedule, fit_restorer
    from repair.synth import RestraintPairs, fixed_pairs

    if args.imagenette:
        raise SystemExit("repair train: the restorer recipe trains on a folder (--data), "
                         "not on Imagenette")
    cfg = get_config(args.profile)
    crop = args.image_size or (cfg.image_size if cfg.profile == "tiny" else 128)
    total = args.max_steps or cfg.max_steps or 300
    schedule = Schedule(total_steps=total, crop=crop, final_crop=args.final_size or max(crop, 256)
                        if cfg.profile != "tiny" else crop, val_every=args.val_every,
                        warmup=min(100, max(total // 10, 1)))
    train_photos, val_photos = _restorer_photos(cfg, args.data, args.seed)
    if args.val_limit:
        val_photos = val_photos[:args.val_limit]
    val_size = args.val_size or (schedule.final_crop if cfg.profile != "tiny" else crop)
    pairs = RestraintPairs(train_photos, seed=args.seed)
    val = fixed_pairs(val_photos, size=val_size, seed=args.seed)
    out = Path(args.out)
    settings = {"profile": cfg.profile, "data": str(args.data or ""), "crop": crop,
                "final_crop": schedule.final_crop, "total_steps": total,
                "batch_size": args.batch_size or recipe.batch_size,
                "train_photos": len(train_photos), "val_photos": len(val_photos),
                "val_size": val_size, "init": args.init}
    state = new_state(recipe, *widths(recipe, cfg.ngf, cfg.ndf), crop, "cpu", args.seed,
                      **settings)
    if args.init and not (args.resume and (out / "last.pt").exists()):
        init_generator(state, args.init)
    if args.resume and (out / "last.pt").exists():
        load_state(out / "last.pt", state)
        state.settings["total_steps"] = total  # a resumed run may be given a longer schedule
        print(f"resuming {out / 'last.pt'} at step {state.global_step} of {total}", flush=True)
    callbacks: list[Callback] = [HistoryWriter(out), Checkpointer(out, args.save_every or 50)]
    if args.time_limit:
        callbacks.append(TimeLimit(args.time_limit))
    start = time.time()
    log = None if args.quiet else (lambda line: print(line, flush=True))
    fit_restorer(state, pairs, val, schedule, args.batch_size, callbacks, log)
    summary = {"recipe": recipe.name, "steps": state.global_step, "total_steps": total,
               "images_seen": state.images_seen, "wall_s": round(time.time() - start, 1),
               "best": state.best}
    atomic_write_bytes(out / "summary.json", json.dumps(summary, indent=1).encode())
    if log:
        log(json.dumps(summary))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m repair.train``: the same options as ``repair train``."""
    parser = add_train_arguments(argparse.ArgumentParser(
        prog="python -m repair.train", description="Train a restoration GAN (chapter 03)."))
    return run_train(parser.parse_args(argv))
