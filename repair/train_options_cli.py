"""The options of ``repair train``: the argument table, and the check of every value before any
data or model loads (a bad number, a missing folder, an OUT that already holds a run, a malformed
``--init`` or ``OUT/last.pt``), each refused with a message naming the option.

Running the command (:func:`repair.train_cli.run_train`) lives in :mod:`repair.train_cli`.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from repair.batch import check_out_dir
from repair.checkpoint import read_checkpoint
from repair.checkpoint_check import check_net_record, check_training_state
from repair.damage import MIXES
from repair.recipes import RECIPES

__all__ = ["RUN_FILES", "add_train_arguments", "check_train_arguments"]


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
    p.add_argument("--overwrite", action="store_true",
                   help="start afresh in an OUT that already holds a run, replacing its files "
                        "(default: refuse; --resume continues it)")
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
    return _add_restorer_arguments(p)


def _add_restorer_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options only the ``restorer`` recipe reads (rounds, crops, what its pairs hold)."""
    p.add_argument("--val-every", type=int, default=250, metavar="N",
                   help="restorer recipe: validate (and keep the best) every N steps")
    p.add_argument("--final-size", type=int, metavar="N",
                   help="restorer recipe: crop side of the last 20%% of the steps (default 256, "
                        "or the crop size if larger)")
    p.add_argument("--single-share", type=float, default=0.0, metavar="P",
                   help="restorer recipe: share of damaged training pairs with one damage alone "
                        "(blur, splotches, cracks or contrast; default 0: independent odds only)")
    p.add_argument("--decoy-share", type=float, default=0.0, metavar="P",
                   help="restorer recipe: share of training crops with decoys painted in before "
                        "damage (lines, grids, shapes to keep; default 0: none)")
    p.add_argument("--clean-share", type=float, default=None, metavar="P",
                   help="restorer recipe: share of clean training pairs, the identity as target "
                        "(default 0.15)")
    p.add_argument("--mask-pos-weight", type=float, default=None, metavar="W",
                   help="restorer recipe: how much more a missed damaged pixel costs in the mask "
                        "loss than a false alarm (default: the recipe's, 3)")
    p.add_argument("--sharpen-branch", action="store_true", default=None,
                   help="restorer recipe: add the global sharpening branch (how much unsharp "
                        "mask the whole photo needs; zero at start, so --init may name a "
                        "checkpoint without it)")
    p.add_argument("--train-only", choices=["sharpen"], default=None, metavar="BRANCH",
                   help="restorer recipe: train only this branch (sharpen: the sharpening branch, "
                        "on a network from --init that otherwise keeps its weights)")
    p.add_argument("--min-side", type=int, default=0, metavar="N",
                   help="restorer recipe: train only on photos whose shorter side has at least N "
                        "px (256: none enlarged to fill a crop; default 0: all)")
    return p


_POSITIVE = {"epochs": 1, "batch_size": 1, "image_size": 16, "max_steps": 1, "max_images": 1,
             "num_images": 1, "epoch_photos": 1, "val_limit": 1, "val_size": 16, "threads": 1,
             "save_every": 1, "val_every": 1, "final_size": 16, "workers": 0, "seed": 0,
             "min_side": 0}
RUN_FILES = ("last.pt", "best.pt", "G_best.pt", "summary.json", "history.json")


def check_train_arguments(args: argparse.Namespace) -> Path:
    """Every option of ``repair train`` checked before any data or model loads; returns OUT.

    Raises:
        ValueError, FileNotFoundError: naming the option and what to do.
        repair.checkpoint_check.CheckpointError: a malformed ``--init``, or ``OUT/last.pt`` to
            resume.
    """
    for name, low in _POSITIVE.items():
        value = getattr(args, name, None)
        if value is not None and value < low:
            raise ValueError(f"--{name.replace('_', '-')} {value}: must be at least {low} (leave "
                             "it out for the default)")
    if args.lr is not None and not (math.isfinite(args.lr) and args.lr > 0):
        raise ValueError(f"--lr {args.lr}: must be a positive number (e.g. 2e-4)")
    for name in ("single_share", "decoy_share", "clean_share"):
        share = getattr(args, name, None) or 0.0
        if not (math.isfinite(share) and 0 <= share <= 1):
            raise ValueError(f"--{name.replace('_', '-')} {share}: must be a probability "
                             "between 0 and 1")
    weight = getattr(args, "mask_pos_weight", None)
    if weight is not None and not (math.isfinite(weight) and weight > 0):
        raise ValueError(f"--mask-pos-weight {weight}: must be a positive number (1: a miss "
                         "costs as much as a false alarm)")
    if args.time_limit is not None and not args.time_limit > 0:
        raise ValueError(f"--time-limit {args.time_limit}: must be a positive number of seconds")
    if args.scale is not None and not 0 < args.scale[0] <= args.scale[1] <= 4:
        raise ValueError(f"--scale {args.scale[0]} {args.scale[1]}: needs 0 < LOW <= HIGH <= 4")
    if args.data is not None and not Path(args.data).is_dir():
        raise FileNotFoundError(f"--data {args.data}: no such folder of photos")
    out = check_out_dir(args.out, "--out")
    if args.init:
        check_net_record(read_checkpoint(args.init).get("generator"), "generator", args.init)
    last = out / "last.pt"
    if args.resume and last.exists():
        check_training_state(read_checkpoint(last), last)
    elif not args.overwrite and (found := [n for n in RUN_FILES if (out / n).exists()]):
        raise ValueError(f"--out {out} already holds a training run ({', '.join(found)}): pass "
                         "--resume to continue it, --overwrite to start afresh over it, or "
                         "choose another --out")
    return out
