"""Damaged pairs per second at 256x256 on one CPU core, per damage and for the paper's mix.

    python benchmarks/damage.py [--size 256] [--count 50] [--threads 1]
"""

import argparse
import time

import torch

from repair import damage as D
from repair.data import fit_size, skimage_photos


def rate(fn, images, repeats: int = 1) -> float:
    fn(images[0])  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        for x in images:
            fn(x)
    return repeats * len(images) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="side of the square photos")
    parser.add_argument("--count", type=int, default=50, help="photos per measurement")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 = one core)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import cv2
    cv2.setNumThreads(args.threads)

    photos = [fit_size(p, args.size, mode="resize") for p in skimage_photos()]
    images = [photos[i % len(photos)] for i in range(args.count)]
    print(f"{args.count} photos of {args.size}x{args.size}, {args.threads} thread(s)")
    print(f"{'damage':<22}{'pairs/s':>10}{'ms/pair':>10}")
    cases = {name: (lambda x, n=name: D.damage(x, seed=0, **{k: (v if k == n else 0.0)
                                                         for k, v in D.PAPER_MIX.items()}))
             for name in D.DAMAGES}
    cases["paper mix (all four)"] = lambda x: D.damage(x, seed=0)
    for name, fn in cases.items():
        per_second = rate(fn, images)
        print(f"{name:<22}{per_second:>10.1f}{1000 / per_second:>10.2f}")
    batch = torch.stack(images[:16])
    start = time.perf_counter()
    D.damage(batch, seed=0)
    print(f"{'batch of 16 (mix)':<22}{16 / (time.perf_counter() - start):>10.1f}"
          f"{1000 * (time.perf_counter() - start) / 16:>10.2f}")


if __name__ == "__main__":
    main()
