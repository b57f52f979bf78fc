"""The known-latent experiment of chapter 05 over many faces: does each inversion phase help?

Samples ``w*`` from the generator, renders ``x* = G(w*)``, damages it (the notebook's mild mix at
64 px, repair.damage.MILD_MIX), inverts it through the three phases W, W+, W++ with f̂ given the mask (the published
setting) and prints PSNR / SSIM to ``x*`` after each phase: mean, standard deviation, the share of
faces each phase improved, and PSNR inside and outside the damage mask (inside, the photo says
nothing, so a rise there is the generator's prior at work; a fall in W++ is over-fitting).

    python benchmarks/known_latent.py                          # 32 faces, 150+150+150 steps
    python benchmarks/known_latent.py --faces 8 --steps 20 20 20 --threads 2
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from repair import damage as D
from repair import metrics
from repair.damage import MILD_MIX
from repair.inversion import DEFAULT_GENERATOR, PHASES, Degradation, invert, resolve_generator
from repair.stylegan import to_gray

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=DEFAULT_GENERATOR, help="generator name or file")
    parser.add_argument("--faces", type=int, default=32, help="known-latent faces")
    parser.add_argument("--batch", type=int, default=8, help="faces inverted together")
    parser.add_argument("--steps", type=int, nargs=3, default=(150, 150, 150))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if args.faces < 1 or args.batch < 1:
        parser.error("--faces and --batch must be positive")

    torch.set_num_threads(args.threads)
    net_G = resolve_generator(args.checkpoint, "cpu")
    z = torch.randn(args.faces, net_G.z_dim, generator=torch.Generator().manual_seed(args.seed + 1))
    with torch.no_grad():
        x_star = to_gray(net_G.synthesis(net_G.mapping(z), noise_mode="const")).clamp(-1, 1)
    x_damaged, mask = D.damage(x_star, seed=[[args.seed, 100 + j] for j in range(args.faces)],
                               **MILD_MIX)
    stages: list[list[torch.Tensor]] = [[x_damaged]] + [[] for _ in PHASES]
    start = time.perf_counter()
    for lo in range(0, args.faces, args.batch):
        part = slice(lo, lo + args.batch)
        f_hat = Degradation(blur=MILD_MIX["blur"], contrast=MILD_MIX["contrast"], mask=mask[part])
        result = invert(net_G, x_damaged[part], f_hat, phases=tuple(args.steps), progress=False,
                        seed=args.seed)
        for i, r in enumerate(result.restorations):
            stages[i + 1].append(to_gray(r).cpu())
        print(f"  {min(lo + args.batch, args.faces)}/{args.faces} faces, "
              f"{time.perf_counter() - start:.0f} s", flush=True)
    seconds = time.perf_counter() - start
    names = ["damaged", *PHASES]
    outs = [torch.cat(s) for s in stages]
    psnr = [np.asarray(metrics.psnr(x, x_star)).reshape(-1) for x in outs]
    ssim = [np.asarray(metrics.ssim(x, x_star)).reshape(-1) for x in outs]
    inside = [metrics.masked_psnr(x, x_star, mask).numpy() for x in outs]
    outside = [metrics.masked_psnr(x, x_star, ~mask).numpy() for x in outs]

    print(f"\n{args.faces} known-latent faces from {args.checkpoint}, steps "
          f"{'+'.join(map(str, args.steps))}, mix {MILD_MIX}, f̂ given the mask; "
          f"{seconds / args.faces:.1f} s per face on {args.threads} thread(s)\n")
    print(f"{'stage':<9}{'PSNR':>8}{'sd':>6}{'SSIM':>8}{'sd':>7}{'inside':>9}{'outside':>9}"
          f"{'improved':>10}")
    for i, name in enumerate(names):
        improved = "" if i == 0 else f"{np.mean(psnr[i] > psnr[i - 1]):.0%}"
        print(f"{name:<9}{psnr[i].mean():8.2f}{psnr[i].std():6.2f}{ssim[i].mean():8.3f}"
              f"{ssim[i].std():7.3f}{inside[i].mean():9.2f}{outside[i].mean():9.2f}{improved:>10}")
    worse = np.mean(psnr[3] < psnr[2])
    print(f"\nW++ lowered PSNR (over-fitting) on {worse:.0%} of the faces; inside the mask it moved "
          f"{inside[3].mean() - inside[2].mean():+.2f} dB from W+.")


if __name__ == "__main__":
    main()
