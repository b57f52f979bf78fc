"""Seconds per image and per phase (W, W+, W++) of the robust StyleGAN inversion on this machine.

    python benchmarks/inversion.py                       # the committed 64 px faces generator
    python benchmarks/inversion.py --checkpoint runs/stylegan/faces64/checkpoint.pt
    python benchmarks/inversion.py --checkpoint random   # a random generator of the same size
    python benchmarks/inversion.py --steps 150 150 150 --batch 4 --threads 2
"""

from __future__ import annotations

import argparse
import time

import torch

from repair.inversion import DEFAULT_GENERATOR, Degradation, RobustLoss, invert, resolve_generator
from repair.stylegan import StyleGAN2Generator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=DEFAULT_GENERATOR,
                        help=f"generator name or file (gantrain checkpoint, exported .pt, NVIDIA "
                             f".pkl); default: the committed {DEFAULT_GENERATOR}; 'random': a "
                             "randomly initialised gray generator of the training size")
    parser.add_argument("--resolution", type=int, default=64, help="random generator only")
    parser.add_argument("--steps", type=int, nargs=3, default=(20, 20, 20),
                        help="steps per phase (the paper: 150 150 150)")
    parser.add_argument("--batch", type=int, default=1, help="images inverted together")
    parser.add_argument("--loss", default="auto", choices=("auto", "lpips", "ms-l1-ssim"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    if args.checkpoint != "random":
        net_G = resolve_generator(args.checkpoint, args.device)
        source = args.checkpoint
    else:
        torch.manual_seed(0)
        net_G = StyleGAN2Generator(args.resolution, 1, z_dim=128, w_dim=128, mapping_layers=2,
                                   channel_base=1024, channel_max=128).to(args.device)
        source = "RANDOMLY INITIALISED generator: timings only, no restoration"
    params = sum(p.numel() for p in net_G.parameters())
    print(f"generator: {source}\n  {net_G.resolution} px, {net_G.channels} channel(s), "
          f"{net_G.num_ws} style inputs, W++ {net_G.num_ws} x {net_G.max_channels} x "
          f"{net_G.w_dim}, {params:,} parameters")
    with torch.no_grad():
        z = torch.randn(args.batch, net_G.z_dim, generator=torch.Generator().manual_seed(1))
        target = net_G(z.to(args.device), noise_mode="const").clamp(-1, 1)  # (B, C, R, R)
    loss = RobustLoss(args.loss)
    f_hat = Degradation(blur=0.3, contrast=0.3)
    print(f"loss: {loss.name}; degradation: {f_hat.extra_repr()}; batch {args.batch}; "
          f"threads {torch.get_num_threads()}; device {args.device}")
    times = []
    for i, steps in enumerate(args.steps):
        only = tuple(steps if j == i else 0 for j in range(3))
        start = time.perf_counter()
        invert(net_G, target, f_hat, phases=only, loss=loss, progress=False, device=args.device)
        times.append(time.perf_counter() - start)
    start = time.perf_counter()
    result = invert(net_G, target, f_hat, phases=tuple(args.steps), loss=loss, progress=False,
                    device=args.device)
    total = time.perf_counter() - start
    for name, steps, seconds in zip(("W", "W+", "W++"), args.steps, times):
        per_step = seconds / max(steps, 1)
        print(f"{name:4s} {steps:4d} steps: {seconds:7.2f} s  ({per_step * 1000:7.1f} ms/step, "
              f"{per_step / args.batch * 1000:7.1f} ms/step/image); 150 steps ~ "
              f"{150 * per_step / args.batch:6.1f} s/image")
    print(f"all three phases: {total:.2f} s for {args.batch} image(s) = "
          f"{total / args.batch:.2f} s/image; loss {result.losses[0][0]:.4f} -> "
          f"{result.losses[-1][-1] if result.losses[-1] else float('nan'):.4f}")
    per_image_paper = sum(150 * t / max(s, 1) for t, s in zip(times, args.steps)) / args.batch
    print(f"estimated for the paper's 150+150+150 steps: {per_image_paper:.1f} s/image")


if __name__ == "__main__":
    main()
