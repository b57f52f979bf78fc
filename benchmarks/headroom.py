"""Where the restorer's remaining error is: finding the damage, the photo's contrast, or the rest.

    python benchmarks/headroom.py                       # chapter 04's 18 photos, the paper's mix
    python benchmarks/headroom.py --photos validation   # the validation split (to choose on)
    python benchmarks/headroom.py checkpoints/restorer-book.pt runs/x/G_best.pt --per-photo

Each photo is damaged with the paper's mix (photo i of a set with seed i, as in
``benchmarks/quality.py`` and chapter 04) and restored four ways by each checkpoint
(:func:`repair.headroom.headroom`): as a user runs it (``own mask``), with the synthesis' true damage mask in place of the network's guess (``true
mask``: perfect finding), with an empty mask (``no mask``: what finding is worth at all), and the
own-mask output after the global gain and offset closest to the clean photo (``best gain/offset``:
an oracle for the photo's contrast and brightness, which a blind restorer must guess).

Beside them: the damaged input, the input with its blur alone (what a restorer that removes every
other damage perfectly and does not deblur would reach), and how the squared error of the own-mask
output splits between the damaged pixels (true mask) and the rest.
"""

from __future__ import annotations

import argparse

import torch

from repair.checkpoint import load_generator
from repair.config import data_root
from repair.damage import PAPER_MIX, damage
from repair.evaluate import load_clean_images
from repair.headroom import WAYS, headroom
from repair.metrics import psnr
from repair.restore import DEFAULT_MODEL
from repair.validation import validation_photos

SETS = ("set12", "kodak24", "bsd68")


def photo_groups(which: str, limit: int) -> dict[str, torch.Tensor]:
    """``set -> (N, 1, 256, 256)``: chapter 04's sets, or the validation split as one group."""
    if which == "validation":
        return {"validation": validation_photos(size=256, limit=3 * limit)}
    return {name: load_clean_images(data_root() / "eval" / name, 256, limit)[1] for name in SETS}


def damaged_pairs(groups: dict[str, torch.Tensor]):
    """``(x_clean, x_damaged, true mask, x_blur_only)`` over all groups, photo i of a group with
    seed i (the paper's mix)."""
    rows = []
    for x in groups.values():
        seeds = list(range(len(x)))
        x_damaged, mask = damage(x, seed=seeds)
        blur_only = damage(x, seed=seeds, splotches=0.0, cracks=0.0, contrast=0.0)[0]
        rows.append((x, x_damaged, mask, blur_only))
    return [torch.cat(parts) for parts in zip(*rows)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="*", default=[f"checkpoints/{DEFAULT_MODEL}.pt"],
                        help="restorer checkpoints with a mask branch (default: the shipped one)")
    parser.add_argument("--photos", choices=["eval", "validation"], default="eval",
                        help="chapter 04's measuring photos, or the validation split")
    parser.add_argument("--limit", type=int, default=6, help="photos per set (validation: 3x)")
    parser.add_argument("--per-photo", action="store_true", help="also one row per photo")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x, x_damaged, mask, blur_only = damaged_pairs(photo_groups(args.photos, args.limit))
    print(f"{len(x)} photos ({args.photos}), 256x256, the paper's mix {PAPER_MIX}, photo i of a "
          f"set with seed i; {mask.float().mean():.1%} of the pixels under splotches or cracks")
    print(f"damaged input {psnr(x_damaged, x).mean():.2f} dB; its blur alone "
          f"{psnr(blur_only, x).mean():.2f} dB\n")
    print("| checkpoint | own mask | true mask | no mask | best gain/offset | error in mask |")
    print("|---|--:|--:|--:|--:|--:|")
    for path in args.checkpoints:
        rows = headroom(load_generator(path).eval(), x, x_damaged, mask)
        cells = [f"{rows[k].mean():.2f}" for k in WAYS]
        print(f"| {path} | " + " | ".join(cells) + f" | {rows['error in mask'].mean():.0%} |")
        if args.per_photo:
            for i in range(len(x)):
                print(f"| photo {i} | " + " | ".join(f"{rows[k][i]:.2f}" for k in WAYS)
                      + f" | {rows['error in mask'][i]:.0%} |")


if __name__ == "__main__":
    main()
