"""Milliseconds per image for every restorer, built-in and trained, on one CPU core.

    python benchmarks/restore.py                  # 4 photos of eval/set12 at 256x256, 5 repeats
    python benchmarks/restore.py --size 512 --threads 2
    python benchmarks/restore.py --images 2 --repeats 2 --checkpoints runs   # runs/<name>/G_best.pt

Each photo is damaged once (repair.damage.PAPER_MIX, seed i) and restored one image per call;
the figure is the median over repeats of the mean time per image (one untimed warm-up call first).
Trained generators come from checkpoints/ (repair.zoo) and run without gradients.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import cv2
import torch

from repair import zoo
from repair.config import data_root
from repair.damage import damage
from repair.evaluate import load_clean_images
from repair.methods import builtin_methods


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clean", default=str(data_root() / "eval" / "set12"),
                        help="folder of clean photos (default: %(default)s)")
    parser.add_argument("--images", type=int, default=4, help="photos to time on")
    parser.add_argument("--size", type=int, default=256, help="square side in pixels")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes over the photos")
    parser.add_argument("--threads", type=int, default=1, help="torch/OpenCV threads")
    parser.add_argument("--checkpoints", default=None,
                        help="folder of trained generators (default: checkpoints/, else "
                             "$REPAIR_CHECKPOINTS)")
    parser.add_argument("--device", default="cpu", help="where the generators run")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    try:
        names, x_all = load_clean_images(args.clean, size=args.size, limit=args.images)
        methods = {**builtin_methods(),
                   **zoo.learned_methods(device=args.device, root=args.checkpoints)}
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    pairs = [damage(x[None], seed=i) for i, x in enumerate(x_all)]  # [(x_damaged, mask)]

    print(f"{len(names)} images of {args.size}x{args.size}, {args.threads} thread(s), "
          f"{args.repeats} repeats")
    width = max(16, *map(len, methods))
    print(f"{'method':<{width}} {'ms/image':>9} {'min':>8} {'max':>8}")
    for name, method in methods.items():
        method(*pairs[0])  # warm-up
        passes = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            for x_damaged, mask in pairs:
                method(x_damaged, mask)
            passes.append((time.perf_counter() - start) * 1000 / len(pairs))
        print(f"{name:<{width}} {statistics.median(passes):>9.2f} {min(passes):>8.2f} "
              f"{max(passes):>8.2f}")
    x_damaged, _ = pairs[0]
    start = time.perf_counter()
    for _ in range(args.repeats):
        builtin_methods()["inpaint-sharpen"](x_damaged, None)
    print(f"{'inpaint-sharpen':<{width}} {(time.perf_counter() - start) * 1000 / args.repeats:>9.2f}"
          f"   (no mask: damage detected first, 1 image)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
