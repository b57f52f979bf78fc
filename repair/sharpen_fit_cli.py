"""``python -m repair.sharpen_fit_cli``: fit a restorer's sharpening branch (repair.sharpen_fit).

    python -m repair.sharpen_fit_cli --init checkpoints/restorer-book.pt --out runs/sharpen.pt

Draws ``--pairs`` training pairs of the restorer recipe's mix (``repair.synth``, validation photos
carved out as ``repair train`` does), fits the branch's head to each pair's best amount, and
writes a release checkpoint: the ``--init`` network unchanged but for the fitted branch.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import torch


def build_parser() -> argparse.ArgumentParser:
    """The options of ``python -m repair.sharpen_fit_cli``."""
    p = argparse.ArgumentParser(prog="python -m repair.sharpen_fit_cli", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--init", required=True, help="restorer checkpoint to add the branch to")
    p.add_argument("--out", required=True, help="checkpoint to write (.pt)")
    p.add_argument("--data", default=None, help="folder of training photos (default: "
                   "../shared/data/train)")
    p.add_argument("--pairs", type=int, default=1280, help="training pairs to fit on")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--size", type=int, default=256, help="crop side")
    p.add_argument("--seed", type=int, default=321)
    p.add_argument("--ridge", type=float, default=100.0, help="ridge penalty")
    p.add_argument("--deadzone", type=float, default=0.4,
                   help="amounts within this of zero are not applied")
    p.add_argument("--single-share", type=float, default=0.4)
    p.add_argument("--decoy-share", type=float, default=0.3)
    p.add_argument("--clean-share", type=float, default=0.25)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--quiet", action="store_true")
    return p


def check(args: argparse.Namespace) -> None:
    """Every option checked before anything loads (ValueError/FileNotFoundError naming it)."""
    if not Path(args.init).is_file():
        raise FileNotFoundError(f"--init {args.init}: no such checkpoint")
    if Path(args.out).resolve() == Path(args.init).resolve():
        raise ValueError("--out must not be --init: write elsewhere, then compare and copy")
    if Path(args.out).exists() and not args.overwrite:
        raise FileExistsError(f"--out {args.out} exists: pass --overwrite to replace it")
    for name in ("pairs", "batch_size", "size"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
    if not (math.isfinite(args.ridge) and args.ridge >= 0):
        raise ValueError(f"--ridge {args.ridge}: must be a number >= 0")
    if not (math.isfinite(args.deadzone) and 0 <= args.deadzone <= 10):
        raise ValueError(f"--deadzone {args.deadzone}: must be from 0 to 10")
    for name in ("single_share", "decoy_share", "clean_share"):
        if not 0 <= getattr(args, name) <= 1:
            raise ValueError(f"--{name.replace('_', '-')} must be a probability from 0 to 1")


def run(args: argparse.Namespace) -> dict:
    """Fit the branch as ``args`` say and write ``--out``; returns the fit's settings and figures."""
    from repair.checkpoint import load_generator, net_record, read_checkpoint, save_checkpoint
    from repair.nafnet import MaskedNAFRestorer
    from repair.sharpen_fit import fit_sharpen_head, with_sharpen_head
    from repair.synth import RestraintPairs, training_photos

    check(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    source = load_generator(args.init)
    if not isinstance(source, MaskedNAFRestorer):
        raise ValueError(f"--init {args.init}: a {type(source).__name__}, not the restorer "
                         "(repair train --recipe restorer)")
    net = with_sharpen_head(source, args.deadzone)
    photos, _ = training_photos(args.data, seed=0)
    pairs = RestraintPairs(photos, seed=args.seed, single_share=args.single_share,
                           decoy_share=args.decoy_share, clean_share=args.clean_share)
    steps = math.ceil(args.pairs / args.batch_size)
    batches = (pairs.batch(step, min(args.batch_size, args.pairs - step * args.batch_size),
                           args.size)[:2] for step in range(steps))
    bar = None
    if not args.quiet:
        from tqdm.auto import tqdm
        bar = tqdm(total=args.pairs, desc="fitting the sharpening branch", unit="pair")
    figures = fit_sharpen_head(net, batches, ridge=args.ridge,
                               progress=bar.update if bar else None)
    if bar:
        bar.close()
    payload = read_checkpoint(args.init)
    half = any(v.dtype == torch.float16 for v in payload["generator"]["state_dict"].values())
    record = net_record(net)
    if half:
        record["state_dict"] = {k: v.half() if v.is_floating_point() else v
                                for k, v in record["state_dict"].items()}
    settings = {k: getattr(args, k) for k in ("pairs", "batch_size", "size", "seed", "ridge",
                                               "deadzone", "single_share", "decoy_share",
                                               "clean_share")}
    payload["generator"] = record
    payload["sharpen_fit"] = {**settings, **figures, "init": str(args.init)}
    save_checkpoint(args.out, payload)
    return payload["sharpen_fit"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2: a bad option, nothing written)."""
    args = build_parser().parse_args(argv)
    try:
        figures = run(args)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"python -m repair.sharpen_fit_cli: error: {err}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
