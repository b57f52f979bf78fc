"""``repair evaluate`` (and ``python -m repair.evaluate_cli``): the command line around
:func:`repair.evaluate.evaluate`.

Every option, the clean-photo folder and the ``--json`` file are checked before any generator
loads; a bad photo or checkpoint is reported and the evaluation goes on (exit status 1), like the
other commands.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from repair.evaluate import evaluate, format_table, save_json
from repair.methods import Restorer, builtin_methods
from repair.zoo import select_methods

__all__ = ["add_evaluate_arguments", "check_evaluate_arguments", "run_evaluate", "main"]


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the options of ``repair evaluate`` to ``parser``."""
    parser.add_argument("--clean", metavar="DIR", default=None,
                        help="folder of clean photos, searched recursively "
                             "(default: <data>/eval/set12)")
    parser.add_argument("--methods", nargs="+", metavar="NAME", default=None,
                        help=f"methods to compare, by name (default: all built-in and all trained "
                             f"ones). Built in: {', '.join(builtin_methods())}; trained: the "
                             f"generators in --checkpoints")
    parser.add_argument("--checkpoints", metavar="DIR", default=None,
                        help="folder of trained generators: MANIFEST.json or *.pt, or training "
                             "runs <name>/G_best.pt (default: the repository's checkpoints/, "
                             "else $REPAIR_CHECKPOINTS)")
    parser.add_argument("--device", default="cpu", help="where generators run (default cpu)")
    parser.add_argument("--seed", type=int, default=0, help="image i is damaged with seed+i (0 "
                                                             "or more)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N images")
    parser.add_argument("--size", type=int, default=256, help="side of the square crops (pixels)")
    parser.add_argument("--per-damage", action="store_true",
                        help="also score each damage alone (blur, splotches, cracks, contrast)")
    parser.add_argument("--json", metavar="OUT", default=None, help="write all results here")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing --json file (default: refuse before starting)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def check_evaluate_arguments(args: argparse.Namespace) -> tuple[Path, str]:
    """Every option checked before any generator loads; returns ``(clean folder, device)``.

    Raises:
        ValueError, FileNotFoundError: naming the option and what to do.
    """
    from repair.batch import check_new_file
    from repair.config import data_root
    from repair.device import pick_device
    from repair.images import find_images

    if args.seed < 0:
        raise ValueError(f"--seed {args.seed}: must be 0 or more")
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit {args.limit}: must be at least 1 (or leave it out for all)")
    if args.size < 16:
        raise ValueError(f"--size {args.size}: must be at least 16 pixels (e.g. 256)")
    if args.json is not None:
        check_new_file(args.json, "--json", getattr(args, "overwrite", False))
    clean = Path(args.clean) if args.clean else data_root() / "eval" / "set12"
    if args.clean is not None and not str(args.clean).strip():
        raise ValueError("--clean is empty: name the folder of clean photos")
    find_images(clean)                     # a missing folder or one without photos: say so now
    return clean, str(pick_device(getattr(args, "device", "cpu")))


def _report(failed: Mapping[str, str], what: str) -> None:
    for name, message in failed.items():
        print(f"  failed ({what}): {message if name in message else f'{name}: {message}'}",
              file=sys.stderr)


def run_evaluate(args: argparse.Namespace, extra_methods: Mapping[str, Restorer] | None = None
                 ) -> int:
    """Run ``repair evaluate`` from parsed arguments; print the table. Returns an exit status
    (0 all scored, 1 a photo or checkpoint failed and was left out, 2 a usage error).

    Args:
        args: from a parser set up by :func:`add_evaluate_arguments`.
        extra_methods: more named methods for ``--methods``, besides the built-ins and the trained
            generators of ``--checkpoints`` (:mod:`repair.zoo`), which are used by default.
    """
    try:
        clean, device = check_evaluate_arguments(args)
        names = None if args.methods is None else [n for arg in args.methods
                                                    for n in arg.split(",") if n]
        bad_models: dict[str, str] = {}
        methods = select_methods(names, getattr(args, "checkpoints", None), device,
                                 extra_methods, failed=bad_models)
        results = evaluate(clean, methods, seed=args.seed, per_damage=args.per_damage,
                           limit=args.limit, size=args.size,
                           progress=not getattr(args, "no_progress", False))
        print(format_table(results))
        if args.json:
            results["failed_methods"] = bad_models
            print(f"wrote {save_json(results, args.json)}")
    except (FileNotFoundError, ValueError) as err:
        print(f"repair evaluate: error: {err}", file=sys.stderr)
        return 2
    _report(bad_models, "checkpoint")
    _report(results["failed"], "photo")
    return 1 if bad_models or results["failed"] else 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m repair.evaluate_cli``: the same options as ``repair evaluate``."""
    parser = add_evaluate_arguments(argparse.ArgumentParser(
        prog="python -m repair.evaluate_cli", description="Damage clean photos with fixed seeds, "
        "restore them with each method, print a table and optionally write JSON."))
    return run_evaluate(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
