"""Restoration quality of every method, built-in and trained, on a folder of clean photos.

    python benchmarks/quality.py                       # eval/set12, paper mix, 256x256
    python benchmarks/quality.py --per-damage --limit 4
    python benchmarks/quality.py --clean ../shared/data/eval/bsd68 --json out/quality.json
    python benchmarks/quality.py --methods damaged inpaint-sharpen pix2pix-book --limit 4

Each photo i is damaged with seed+i (repair.damage.PAPER_MIX), restored by every method and
scored with PSNR, SSIM and the edge ratio (LPIPS only where its weights are on disk). Trained
generators come from checkpoints/ (repair.zoo; --checkpoints for another folder).
"""

from __future__ import annotations

import argparse
import sys
import time

import cv2
import torch

from repair.config import data_root
from repair.evaluate import builtin_methods, evaluate, format_table, save_json, select_methods


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clean", default=str(data_root() / "eval" / "set12"),
                        help="folder of clean photos (default: %(default)s)")
    parser.add_argument("--methods", nargs="+", default=None,
                        help=f"methods to compare (default: all; built in: "
                             f"{', '.join(builtin_methods())}, plus the trained generators)")
    parser.add_argument("--checkpoints", default=None,
                        help="folder of trained generators (default: checkpoints/, else "
                             "$REPAIR_CHECKPOINTS)")
    parser.add_argument("--limit", type=int, default=None, help="first N images only")
    parser.add_argument("--size", type=int, default=256, help="square side in pixels")
    parser.add_argument("--seed", type=int, default=0, help="image i is damaged with seed+i")
    parser.add_argument("--per-damage", action="store_true", help="also each damage alone")
    parser.add_argument("--json", default=None, help="also write the full results here")
    parser.add_argument("--threads", type=int, default=1, help="torch/OpenCV threads")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    start = time.perf_counter()
    try:
        methods = select_methods(args.methods, args.checkpoints)
        results = evaluate(args.clean, methods, seed=args.seed, per_damage=args.per_damage,
                           limit=args.limit, size=args.size)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_table(results))
    print(f"\n({time.perf_counter() - start:.1f} s in all, {args.threads} thread(s))")
    if args.json:
        print(f"wrote {save_json(results, args.json)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
