"""Training images per second for every recipe at the ``book`` size (64x64 crops) on this machine.

    python benchmarks/train.py                              # all recipes, 1 thread, 10 s each
    python benchmarks/train.py --recipes paper pix2pix --threads 2 --seconds 30
    python benchmarks/train.py --channels-last --batch-size 16

One training step is :func:`repair.train.train_step`, what :func:`repair.train.fit` does per
batch (update_G and update_D in the recipe's order, losses read back). The batch is one fixed
random tensor and a noisier copy as the damaged input, made beforehand, so the figure is the
networks' speed, not the data pipeline's. One untimed warm-up step first; then steps are repeated
for ``--seconds`` and images / elapsed printed.
"""

from __future__ import annotations

import argparse
import time

import torch

from repair.config import get_config
from repair.train import RECIPES, new_state, pick_device, train_step


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--profile", default="book", help="widths and crop size (default book)")
    parser.add_argument("--image-size", type=int, help="crop side (default: the profile's)")
    parser.add_argument("--batch-size", type=int, help="default: each recipe's own")
    parser.add_argument("--seconds", type=float, default=10.0, help="timed seconds per recipe")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    parser.add_argument("--channels-last", action="store_true", help="channels-last memory")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    cfg = get_config(args.profile)
    size = args.image_size or cfg.image_size
    device = pick_device(args.device)
    memory = torch.channels_last if args.channels_last else torch.contiguous_format
    layout = "channels-last" if args.channels_last else "NCHW"
    print(f"profile {cfg.profile}: {size}x{size} crops, ngf={cfg.ngf}, ndf={cfg.ndf}, "
          f"{args.threads} thread(s), {device}, {layout}")
    print(f"{'recipe':<12} {'batch':>5} {'steps':>6} {'images/s':>9} {'ms/image':>9}")
    for name in args.recipes:
        state = new_state(name, cfg.ngf, cfg.ndf, size, device)
        for net in (state.net_G, state.net_D):
            if net is not None:
                net.to(memory_format=memory)
        batch = args.batch_size or state.recipe.batch_size
        g = torch.Generator().manual_seed(0)
        x_clean = (torch.rand(batch, 1, size, size, generator=g) * 2 - 1).to(device)
        x_clean = x_clean.contiguous(memory_format=memory)
        x_damaged = (x_clean + 0.2 * torch.randn(x_clean.shape, generator=g).to(device)
                     ).clamp(-1, 1).contiguous(memory_format=memory)
        train_step(state, x_clean, x_damaged)                 # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < args.seconds or steps == 0:
            train_step(state, x_clean, x_damaged)
            steps += 1
        if device.type == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        rate = steps * batch / elapsed
        print(f"{name:<12} {batch:>5} {steps:>6} {rate:>9.2f} {1000 / rate:>9.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
