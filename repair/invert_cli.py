"""``repair invert``: restore photos by robust StyleGAN inversion, from the command line.

The options and the batch around :func:`repair.inversion.invert`: photos of any size and mode are
read as gray, centre-cropped, resized to the generator's side, inverted one by one, and written as
PNG (one bad file is reported and the batch goes on). Every output is planned and the output
folder checked before the generator is resolved; a file already in ``--out`` is replaced only
with ``--overwrite`` (the policy of :mod:`repair.batch`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from repair.inversion import (DEFAULT_GENERATOR, PHASES, Degradation, RobustLoss, invert,
                              resolve_generator)
from repair.options_cli import strength
from repair.stylegan import to_gray

__all__ = ["parse_steps", "add_invert_arguments", "run_invert", "PHASE_SUFFIXES"]

PHASE_SUFFIXES = {"W": "_w", "W+": "_wplus", "W++": "_wplusplus"}
"""File-name suffix of the restoration after each phase (``--save-phases``)."""


def parse_steps(text: str) -> tuple[int, int, int]:
    """argparse type: ``"150,150,150"`` -> steps of the W, W+ and W++ phases (0 skips one)."""
    try:
        steps = tuple(int(part) for part in text.split(","))
    except ValueError:
        steps = ()
    if len(steps) != 3 or min(steps) < 0 or sum(steps) == 0:
        raise argparse.ArgumentTypeError(
            f"--steps needs three non-negative whole numbers N,N,N (W, W+, W++), not all 0; "
            f"got {text!r}")
    return steps  # type: ignore[return-value]


def add_invert_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the options of ``repair invert`` to ``parser``."""
    parser.description = (
        "Restore photos by robust StyleGAN inversion (W, then W+, then W++ filter-wise latents): "
        "search the frozen generator for an image whose degraded version matches the photo. "
        "Photos of any size and mode are read as gray, centre-cropped to a square and resized to "
        "the generator's resolution (64x64 for the default faces generator), so the results have "
        "that size. Works for photos like the generator's training set (the default: frontal "
        "gray faces). Inputs are never overwritten, nor files already in --out unless --overwrite; "
        "a bad file is reported and the batch goes on.")
    parser.add_argument("inputs", nargs="+", metavar="IMAGE",
                        help="image files or folders (recursive)")
    parser.add_argument("--out", required=True, help="output folder (created if missing); "
                                                     "<name>.png is the final restoration")
    parser.add_argument("--generator", default=DEFAULT_GENERATOR, metavar="NAME|PATH",
                        help=f"committed name (default {DEFAULT_GENERATOR}), a registry name "
                             "(ffhq-res256, ...; downloaded once) or a generator file (.pt from "
                             "`python -m repair.gantrain --export`, or an NVIDIA .pkl)")
    parser.add_argument("--steps", type=parse_steps, default=(150, 150, 150), metavar="N,N,N",
                        help="steps of the W, W+ and W++ phases (default 150,150,150; 0 skips "
                             "a phase)")
    parser.add_argument("--mask", default=None, metavar="MASK",
                        help="where the photo is missing (white = missing): one image for every "
                             "input, or a folder holding <name>_mask.* or <name>.* per input "
                             "(as `repair damage --masks` writes); cropped/resized like the photo")
    parser.add_argument("--blur", type=strength, default=0.0, metavar="S",
                        help="blur strength 0-1 that the photo suffered (as in `repair damage`; "
                             "default 0)")
    parser.add_argument("--contrast", type=strength, default=0.0, metavar="S",
                        help="contrast-loss strength 0-1 that the photo suffered (default 0)")
    parser.add_argument("--save-phases", action="store_true",
                        help="also write <name>_w.png, <name>_wplus.png, <name>_wplusplus.png "
                             "(the restoration after each phase)")
    parser.add_argument("--loss", default="auto", choices=("auto", "lpips", "ms-l1-ssim"),
                        help="perceptual distance (default auto: LPIPS if installed with its "
                             "weights, else the offline multi-scale L1+SSIM substitute)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seeds the random fill of masked pixels")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or mps (default cpu)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace files already in --out (default: refuse before starting)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def _mask_for(mask_arg: str | None, path: Path, rel: Path) -> Path | None:
    """The mask file of one input: the file itself, or <name>_mask.* / <name>.* in a folder."""
    from repair.images import IMAGE_EXTENSIONS

    if mask_arg is None:
        return None
    root = Path(mask_arg)
    if root.is_file():
        return root
    for stem in (rel.stem + "_mask", rel.stem):  # <name>_mask first: a folder may hold both
        for ext in IMAGE_EXTENSIONS:
            for candidate in (root / rel.with_name(stem + ext), root / (stem + ext)):
                if candidate.is_file() and candidate.resolve() != path.resolve():
                    return candidate
    raise FileNotFoundError(f"{path}: no mask for it in {root} (looked for {rel.stem}.* and "
                            f"{rel.stem}_mask.*)")


def run_invert(args: argparse.Namespace) -> int:
    """Run ``repair invert`` from parsed arguments; returns the exit status (0 ok, 1 a failure)."""
    from repair.batch import check_out_dir, expand_inputs, plan_all, run_batch
    from repair.device import pick_device
    from repair.images import center_square, clean_stale_temporaries, load_gray, save_gray

    # options, device, inputs and every output are checked before any weights load
    if args.mask is not None and not Path(args.mask).exists():
        raise FileNotFoundError(f"{args.mask}: no such mask file or folder")
    args.device = str(pick_device(args.device))
    out_dir = check_out_dir(args.out)
    pairs = expand_inputs(args.inputs)
    phases = tuple(PHASE_SUFFIXES.items()) if args.save_phases else ()
    # the final restorations and the per-phase files planned together, so none can land on
    # another, on an input, or (without --overwrite) on a file already in --out
    plans = plan_all(pairs, out_dir, ("", *(suffix for _, suffix in phases)),
                     overwrite=getattr(args, "overwrite", False))
    outputs = plans[0]
    phase_outputs = {phase: outs for (phase, _), outs in zip(phases, plans[1:])}
    loss = RobustLoss(args.loss)          # --loss lpips without LPIPS: refused before the generator
    net_G = resolve_generator(args.generator, args.device, progress=not args.quiet)
    side = net_G.resolution
    rel_of = dict(pairs)
    index = {out: i for i, out in enumerate(outputs)}
    clean_stale_temporaries([o for outs in phase_outputs.values() for o in outs])

    def job(path: Path, out: Path) -> None:
        """Invert one photo and write its restoration(s)."""
        x_damaged = center_square(load_gray(path), side)[None]  # (1, 1, R, R)
        mask = None
        if (mask_path := _mask_for(args.mask, path, rel_of[path])) is not None:
            # (1, 1, R, R): a pixel at least 10% covered after resizing counts as missing
            mask = center_square(load_gray(mask_path), side)[None] > -0.8
        f_hat = Degradation(blur=args.blur, contrast=args.contrast, mask=mask)
        result = invert(net_G, x_damaged, f_hat, phases=tuple(args.steps), loss=loss,
                        progress=not args.quiet, device=args.device, seed=args.seed)
        for phase, restored in zip(PHASES, result.restorations):
            if phase in phase_outputs:
                save_gray(to_gray(restored)[0].cpu(), phase_outputs[phase][index[out]])
        save_gray(to_gray(result.restored)[0].cpu(), out)

    return run_batch(pairs, job, outputs, desc="invert", progress=not args.quiet)
