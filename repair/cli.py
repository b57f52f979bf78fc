"""The ``repair`` command line: one sub-command per task, each a thin layer over the package.

Sub-commands import their modules only when run, so ``repair --help`` is instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from repair import __version__
from repair.options_cli import strength

__all__ = ["main", "build_parser", "strength", "COMMANDS"]


def _damage_arguments(p: argparse.ArgumentParser) -> Callable:
    from repair.damage import PAPER_MIX, PLATE_DAMAGES

    p.description = ("Write damaged copies of photos as 8-bit grayscale PNGs. Inputs are never "
                     "overwritten; the same seed gives the same damage to the same file name.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders (recursive)")
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    for name, value in PAPER_MIX.items():
        p.add_argument(f"--{name}", type=strength, default=value,
                       help=f"{name} strength 0-1 (default {value})")
    for name in PLATE_DAMAGES:
        p.add_argument(f"--{name}", type=strength, default=0.0,
                       help=f"daguerreotype {name} strength 0-1 (default 0: off)")
    p.add_argument("--masks", action="store_true", help="also write <name>_mask.png (white where "
                                                        "splotches and cracks painted)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace files already in --out (default: refuse before starting)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    def run(args) -> int:
        """Damage the inputs into ``--out``; returns the exit status."""
        from repair.batch import damage_files
        return damage_files(args.inputs, args.out, seed=args.seed, masks=args.masks,
                            progress=not args.quiet, overwrite=args.overwrite,
                            strengths={k: getattr(args, k) for k in (*PAPER_MIX, *PLATE_DAMAGES)})

    return run


def _train_arguments(p: argparse.ArgumentParser) -> Callable:
    from repair.train_cli import run_train
    from repair.train_options_cli import add_train_arguments

    add_train_arguments(p)
    return run_train


def _evaluate_arguments(p: argparse.ArgumentParser) -> Callable:
    from repair.evaluate_cli import add_evaluate_arguments, run_evaluate

    p.description = ("Damage the clean photos with fixed seeds, restore them with each method, "
                     "print a table and optionally write JSON.")
    add_evaluate_arguments(p)
    return run_evaluate


def _restore_arguments(p: argparse.ArgumentParser) -> Callable:
    p.description = ("Restore old photos (files or folders, any size, gray/RGB/RGBA/palette/"
                     "16-bit) into --out as PNG. Colour photos: the luminance is restored and the "
                     "original colour put back. Inputs are never overwritten.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders (recursive)")
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    p.add_argument("--model", default=None,
                   help="shipped weights by name (default: restorer-book, the restorer of "
                        "record; see checkpoints/MANIFEST.md) or a classical method "
                        "(median-clahe, inpaint-sharpen)")
    p.add_argument("--checkpoint", default=None, metavar="PATH",
                   help="a generator checkpoint written by `repair train`")
    p.add_argument("--tile", type=int, default=256, help="tile side for large photos (default 256)")
    p.add_argument("--overlap", type=int, default=32, help="tile overlap in pixels (default 32)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or mps (default cpu)")
    p.add_argument("--strength", type=strength, default=1.0, metavar="S",
                   help="how much of the change to apply: 0 returns the photo as it is, "
                        "1 (default) the full restoration")
    p.add_argument("--masks", action="store_true",
                   help="also write <name>_mask.png: where the restorer found damage (white)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace files already in --out (default: refuse before starting)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    def run(args) -> int:
        """Check everything, load the restorer, restore the inputs; returns the exit status."""
        from repair.device import pick_device
        from repair.restore import check_tiles, plan_restore, resolve_restorer, restore_files

        check_tiles(args.tile, args.overlap)       # options, device, inputs and outputs are all
        device = pick_device(args.device)          # checked before any model loads
        plan = plan_restore(args.inputs, args.out, args.masks, args.overwrite)
        restorer = resolve_restorer(args.model, args.checkpoint, tile=args.tile,
                                    overlap=args.overlap, device=device,
                                    strength=args.strength)
        return restore_files(plan, None, restorer, progress=not args.quiet)

    return run


def _fetch_loc_arguments(p: argparse.ArgumentParser) -> Callable:
    p.description = ("Download daguerreotypes from the Library of Congress collection (loc.gov "
                     "JSON API), each with a JSON sidecar of title, date and rights. Needs internet; "
                     "files already in --out are not fetched again.")
    p.add_argument("--out", required=True, help="output folder (also the cache)")
    p.add_argument("--limit", type=int, default=10, help="number of plates (default 10)")
    p.add_argument("--max-size", type=int, default=1024,
                   help="largest image side to take per item (default 1024)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    def run(args) -> int:
        """Download the plates; returns the exit status (1 if loc.gov failed)."""
        from repair.archive import download_daguerreotypes
        from repair.web import LocError

        if args.limit < 1:
            raise ValueError("--limit must be at least 1")
        try:
            paths = download_daguerreotypes(args.out, limit=args.limit, max_size=args.max_size,
                                            progress=not args.quiet)
        except LocError as err:
            print(f"repair fetch-loc: error: {err}", file=sys.stderr)
            return 1
        print(f"fetch-loc: {len(paths)} plates in {args.out}", file=sys.stderr)
        return 0

    return run


def _invert_arguments(p: argparse.ArgumentParser) -> Callable:
    from repair.invert_cli import add_invert_arguments, run_invert

    add_invert_arguments(p)
    return run_invert


# name: (one-line help, function that adds the arguments and returns the runner). The arguments
# of a sub-command are only built when it is the one being run, so `repair --help` stays instant.
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], Callable]]] = {
    "damage": ("damage photos the paper's way (blur, splotches, cracks, contrast)",
               _damage_arguments),
    "train": ("train a restorer: the paper's recipe exactly, or pix2pix (U-Net + PatchGAN)",
              _train_arguments),
    "evaluate": ("damage clean photos, restore them with every method, measure PSNR/SSIM/sharpness",
                 _evaluate_arguments),
    "restore": ("restore old photos of any size and mode with a trained or classical restorer",
                _restore_arguments),
    "invert": ("restore faces by robust StyleGAN inversion (phases W, W+, W++)", _invert_arguments),
    "fetch-loc": ("download Library of Congress daguerreotypes with their metadata (internet)",
                  _fetch_loc_arguments),
}


def build_parser(command: str | None = None) -> tuple[argparse.ArgumentParser, Callable | None]:
    """The argument parser, with the arguments of ``command`` (if any), and its run function."""
    parser = argparse.ArgumentParser(prog="repair", description="Repair damaged old photographs "
                                     "with GANs (the course's command line).")
    parser.add_argument("--version", action="version", version=f"repair {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    runner = None
    for name, (help_text, add_arguments) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            runner = add_arguments(p)
    return parser, runner


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 some inputs failed, 2 usage)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser, runner = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return runner(args)
    except (FileNotFoundError, ValueError) as err:
        print(f"repair {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"repair {args.command}: interrupted; finished outputs are complete, the one in "
              "progress was not written", file=sys.stderr)
        return 130
