"""Restoration quality of every method, built-in and trained, and the restorer's targets.

    python benchmarks/quality.py                        # chapter 04's 18 photos, per damage, targets
    python benchmarks/quality.py --sets set12 --limit 4  # quicker
    python benchmarks/quality.py --methods damaged inpaint-sharpen restorer-book --no-per-damage
    python benchmarks/quality.py --json out/quality.json

The photos are chapter 04's: the first ``--limit`` (6) of each of ``eval/set12``, ``kodak24`` and
``bsd68``, centre squares at 256x256, photo i of a set damaged with seed ``--seed`` + i. Every
method restores the same damaged photos: the paper's mix, each damage alone, clean input and the
daguerreotype mix. ``inpaint-sharpen`` guesses its mask as a user's run would; the oracle
``inpaint-sharpen-oracle`` is told the true one (an upper bound). Then the targets of the restorer
of record are checked against the paper's model, the blind and the oracle classical methods and the
damaged input, all measured in this one run (times on ``--threads`` threads, 1 by default), and
the damage masks it finds are scored against the true masks beside the classical guesser's.
"""

from __future__ import annotations

import argparse
import sys
import time

import cv2
import torch

from repair.config import data_root
from repair.evaluate import evaluate, format_table, load_clean_images, save_json, summarise
from repair.methods import builtin_methods
from repair.zoo import select_methods

SETS = ("set12", "kodak24", "bsd68")


def pooled(results: dict[str, dict]) -> dict:
    """One results dict over several sets: rows re-indexed, summaries recomputed."""
    rows, offset = [], 0
    for res in results.values():
        rows += [dict(r, index=r["index"] + offset) for r in res["rows"]]
        offset += res["settings"]["images"]
    first = next(iter(results.values()))
    names = first["settings"]["methods"]
    settings = dict(first["settings"], images=offset, source=" + ".join(results))
    out = {"settings": settings, "rows": rows, "skipped": first["skipped"],
           "methods": summarise(rows, "mix", names)}
    if "per_damage" in first:
        out["per_damage"] = {d: summarise(rows, d, names) for d in first["per_damage"]}
    return out


def targets(res: dict, ours: str, paper: str, n: int) -> list[tuple[str, str, bool]]:
    """``(target, measured, met)`` for the restorer of record (issue: a restorer that does no
    harm and beats every baseline)."""
    mix = res["methods"]
    o = mix[ours]["psnr"]
    rows = [
        ("mix: PSNR >= damaged input + 6 dB", f"{o:.2f} (input {mix['damaged']['psnr']:.2f}, "
         f"{mix[ours]['gain']:+.2f})", mix[ours]["gain"] >= 6),
    ]
    if paper in mix:
        rows.append(("mix: PSNR >= paper model + 3 dB", f"{o - mix[paper]['psnr']:+.2f} dB",
                     o - mix[paper]["psnr"] >= 3))
    rows.append(("mix: PSNR >= blind classical + 2 dB", f"{o - mix['inpaint-sharpen']['psnr']:+.2f}"
                 " dB", o - mix["inpaint-sharpen"]["psnr"] >= 2))
    rows.append(("mix: PSNR > oracle classical (stretch)",
                 f"{o - mix['inpaint-sharpen-oracle']['psnr']:+.2f} dB",
                 o > mix["inpaint-sharpen-oracle"]["psnr"]))
    for name, summary in res.get("per_damage", {}).items():
        if name in ("daguerreotype",):
            continue
        s = summary[ours]
        if name == "clean":
            rows.append(("clean: PSNR >= 40 dB against itself", f"{s['psnr']:.2f} dB",
                         s["psnr"] >= 40))
            continue
        rows.append((f"{name} alone: not worse than input on average and on >= {n - 1} of {n}",
                     f"{s['gain']:+.2f} dB, worse on {s['worse']}",
                     s["gain"] >= 0 and s["worse"] <= 1))
    if paper in mix:
        ratio = mix[paper]["ms_per_image"] / mix[ours]["ms_per_image"]
        rows.append(("time per image <= 1/20 of the paper generator's",
                     f"{mix[ours]['ms_per_image']:.0f} vs {mix[paper]['ms_per_image']:.0f} ms "
                     f"(1/{ratio:.1f})", ratio >= 20))
    return rows


def main(argv: list[str] | None = None) -> int:
    from repair import zoo
    from repair.restore import DEFAULT_MODEL

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(SETS),
                        help="folders of <data>/eval (default: %(default)s)")
    parser.add_argument("--methods", nargs="+", default=None,
                        help=f"methods to compare (default: all; built in: "
                             f"{', '.join(builtin_methods())}, plus the trained generators)")
    parser.add_argument("--ours", default=DEFAULT_MODEL, help="the restorer whose targets to check")
    parser.add_argument("--paper", default="paper-book", help="the paper's model")
    parser.add_argument("--checkpoints", default=None, help="folder of trained generators")
    parser.add_argument("--limit", type=int, default=6, help="photos per set (default 6)")
    parser.add_argument("--size", type=int, default=256, help="square side in pixels")
    parser.add_argument("--seed", type=int, default=0, help="photo i is damaged with seed+i")
    parser.add_argument("--no-per-damage", action="store_true", help="the paper's mix only")
    parser.add_argument("--json", default=None, help="also write the pooled results here")
    parser.add_argument("--threads", type=int, default=1, help="torch/OpenCV threads")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    start = time.perf_counter()
    try:
        methods = select_methods(args.methods, args.checkpoints)
        results = {name: evaluate(data_root() / "eval" / name, methods, seed=args.seed,
                                  per_damage=not args.no_per_damage, limit=args.limit,
                                  size=args.size, progress=False) for name in args.sets}
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    res = pooled(results)
    print(format_table(res))
    n = res["settings"]["images"]
    if args.ours in res["methods"]:
        print(f"\ntargets of {args.ours} ({n} photos, {args.threads} thread(s)):")
        for target, measured, met in targets(res, args.ours, args.paper, n):
            print(f"  {'met ' if met else 'MISS'}  {target:<64} {measured}")
        net = zoo.load_models([args.ours], root=args.checkpoints)[args.ours]
        print("\ndamage masks on the paper's mix (pixels of all photos pooled):")
        for name, s in mask_table_by_set(args, net).items():
            print(f"  {name:<28} F1 {s['f1']:.3f}  IoU {s['iou']:.3f}  precision "
                  f"{s['precision']:.3f}  recall {s['recall']:.3f}")
    print(f"\n({time.perf_counter() - start:.1f} s in all, {args.threads} thread(s))")
    if args.json:
        print(f"wrote {save_json(res, args.json)}")
    return 0


def mask_table_by_set(args, net) -> dict:
    """Mask scores pooled over the sets, each set's photo i damaged with seed + i as above."""
    from repair.masks import classical_finder, mask_quality, network_finder

    finders = {"classical (detect_damage)": classical_finder}
    if getattr(net, "hparams", {}).get("mask_width"):
        finders[f"{args.ours}'s damage head"] = network_finder(net)
    sets = [load_clean_images(data_root() / "eval" / name, args.size, args.limit)[1]
            for name in args.sets]
    return mask_quality(sets, finders, seed=args.seed)


if __name__ == "__main__":
    sys.exit(main())
