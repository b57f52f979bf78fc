"""Do-no-harm figures of restorer checkpoints on the validation split (never on ``eval/``).

    python benchmarks/restraint.py checkpoints/restorer-book.pt runs/restorer3/G_best.pt
    python benchmarks/restraint.py checkpoints/restorer-book.pt --limit 12 --draws 0 1
    python benchmarks/restraint.py checkpoints/restorer-book.pt --limit 120 --min-side 256

Choosing between training cycles must not look at the measuring photos of chapter 04, so this
script scores candidates on the first ``--limit`` photos of the validation split carved out of
``../shared/data/train`` (centre squares at 256x256, photo i damaged with seed i): the paper's mix,
each damage alone at its strength in that mix, clean input, and clean photos with decoys painted
in (:mod:`repair.decoys`; the photo with its decoys is the target), with PSNR in and out, how many
photos came back worse than they went in, and how the error splits between the pixels the damage
head flags and the rest (a false alarm on a photo with no such damage shows up as in-mask error).
Then the networks are rescored on the training runs' own validation draws (each photo with its own
random damage, :func:`repair.synth.fixed_pairs`, seed per ``--draws``). ``--min-side 256`` keeps
only the photos large enough not to be enlarged (sharp targets, as ``repair train --min-side``).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from repair.checkpoint import load_generator
from repair.damage import damage
from repair.decoys import paint_decoys
from repair.evaluate import damage_settings
from repair.metrics import psnr
from repair.restorer_train import validate_restorer
from repair.synth import fixed_pairs, training_photos
from repair.validation import validation_photos


def cases(x: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``name -> (target, damaged input)``: the paper's mix, each damage alone, clean input, and
    clean photos with decoys painted in (lines, grids, shapes that belong to the photo, seed i)."""
    out = {}
    for name, strengths in damage_settings(per_damage=True).items():
        if name != "daguerreotype":  # photo i: seed i
            out[name] = (x, damage(x, seed=[[i, 0] for i in range(len(x))], **strengths)[0])
    decoyed = torch.stack([paint_decoys(p, np.random.default_rng([i, 1])) for i, p in enumerate(x)])
    out["decoys"] = (decoyed, decoyed)
    return out


def per_damage(net: torch.nn.Module, inputs: dict[str, tuple[torch.Tensor, torch.Tensor]]
               ) -> dict[str, dict[str, float]]:
    """Scores of ``net`` on every ``name -> (target, damaged input)`` of :func:`cases`."""
    rows = {}
    for name, (target, x_damaged) in inputs.items():
        with torch.no_grad():
            out, logits = net(x_damaged, with_mask=True)
        flagged = (torch.sigmoid(logits) > 0.5).float()
        p_in, p_out = psnr(x_damaged, target).clamp(max=60), psnr(out, target).clamp(max=60)
        rows[name] = {"in": float(p_in.mean()), "out": float(p_out.mean()),
                      "worse": int((p_out < p_in).sum()), "flagged": float(flagged.mean()),
                      "mse_flagged": float(((out - target) ** 2 * flagged).mean()),
                      "mse_rest": float(((out - target) ** 2 * (1 - flagged)).mean())}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", help="restorer checkpoints to compare")
    parser.add_argument("--limit", type=int, default=24, help="validation photos per damage")
    parser.add_argument("--draws", type=int, nargs="*", default=[0, 1, 2],
                        help="seeds of the training runs' validation draws to rescore on")
    parser.add_argument("--draw-limit", type=int, default=48, help="photos per validation draw")
    parser.add_argument("--min-side", type=int, default=0,
                        help="only photos whose shorter side has at least N px (default 0: all)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x = validation_photos(size=256, limit=args.limit, min_side=args.min_side)
    inputs = cases(x)  # damaged once, scored for every checkpoint
    _, val_files = training_photos(min_side=args.min_side)
    nets = {path: load_generator(path).eval() for path in args.checkpoints}
    print(f"{len(x)} validation photos, 256x256, photo i damaged with seed i; PSNR capped at 60 dB")
    print("| checkpoint | damage | PSNR in | PSNR out | worse | flagged | MSE flagged | MSE rest |")
    print("|---|---|--:|--:|--:|--:|--:|--:|")
    for path, net in nets.items():
        for name, r in per_damage(net, inputs).items():
            print(f"| {path} | {name} | {r['in']:.2f} | {r['out']:.2f} | {r['worse']} of {len(x)} "
                  f"| {r['flagged']:.3f} | {r['mse_flagged']:.5f} | {r['mse_rest']:.5f} |")
    print(f"\nValidation draws ({args.draw_limit} photos each, PSNR capped at 50 dB, as in training)")
    print("| checkpoint | draw | PSNR in | PSNR out | mask F1 |")
    print("|---|--:|--:|--:|--:|")
    for seed in args.draws:
        pairs = fixed_pairs(val_files[:args.draw_limit], size=256, seed=seed)
        for path, net in nets.items():
            r = validate_restorer(net, *pairs)
            print(f"| {path} | {seed} | {r['val_psnr_damaged']:.2f} | {r['val_psnr']:.2f} "
                  f"| {r.get('val_mask_f1', float('nan')):.3f} |")


if __name__ == "__main__":
    main()
