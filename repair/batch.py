"""Running a per-photo job over many files: inputs expanded, outputs never over inputs, bad files
reported while the batch goes on."""

from __future__ import annotations

import os
import sys
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

from repair.images import ImageError, find_images

__all__ = ["expand_inputs", "plan_outputs", "plan_all", "run_batch", "damage_files"]


def expand_inputs(inputs: Sequence[str | os.PathLike]) -> list[tuple[Path, Path]]:
    """``(file, name relative to the given input)`` for every image under the inputs.

    A file given directly is taken whatever its extension (so a mislabelled file is reported, not
    silently skipped); folders are searched recursively for known image extensions.
    """
    pairs = []
    for item in inputs:
        root = Path(item)
        if not root.exists():
            raise FileNotFoundError(f"{root}: no such file or folder")
        if root.is_file():
            pairs.append((root, Path(root.name)))
        else:
            pairs.extend((path, path.relative_to(root)) for path in find_images(root))
    return pairs


def plan_outputs(pairs: Sequence[tuple[Path, Path]], out_dir: Path, suffix: str = "",
                 ext: str = ".png") -> list[Path]:
    """One output path per input, under ``out_dir``; refuses any plan that would overwrite an input
    or write two results to one file."""
    return plan_all(pairs, out_dir, (suffix,), ext)[0]


def plan_all(pairs: Sequence[tuple[Path, Path]], out_dir: Path, suffixes: Sequence[str],
             ext: str = ".png") -> list[list[Path]]:
    """Every output of a run planned together: one list per suffix (e.g. ``("", "_mask")`` for
    photos and their masks), refusing a plan where any two outputs, of whatever kind, share a file
    (``a_mask.png`` the photo and ``a.png``'s mask) or an output would overwrite an input."""
    inputs = {path.resolve() for path, _ in pairs}
    plans = [[out_dir / rel.with_name(rel.stem + suffix + ext) for _, rel in pairs]
             for suffix in suffixes]
    seen: dict[Path, Path] = {}
    for outputs in plans:
        for (path, _), out in zip(pairs, outputs):
            resolved = out.resolve()
            if resolved in inputs:
                raise ValueError(f"writing {out} would overwrite an input; choose another --out "
                                 "folder")
            if resolved in seen:
                raise ValueError(f"{path} and {seen[resolved]} would both be written to {out}; "
                                 "rename one or process them separately")
            seen[resolved] = path
    return plans


def run_batch(pairs: Sequence[tuple[Path, Path]], job: Callable[[Path, Path], None],
              outputs: Sequence[Path], desc: str, progress: bool = True) -> int:
    """Run ``job(input, output)`` for each pair; a failing file is reported and skipped.

    Returns the exit status: 0 if every file worked, 1 if any failed (a summary goes to stderr).
    """
    from tqdm.auto import tqdm

    failures = []
    for (path, _), out in tqdm(list(zip(pairs, outputs)), desc=desc, unit="photo",
                               disable=not progress):
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            job(path, out)
        except (ImageError, FileNotFoundError, ValueError, OSError) as err:
            failures.append(f"{path}: {err}" if str(path) not in str(err) else str(err))
    done = len(pairs) - len(failures)
    print(f"{desc}: {done} of {len(pairs)} written", file=sys.stderr)
    for message in failures:
        print(f"  failed: {message}", file=sys.stderr)
    return 1 if failures else 0


def damage_files(inputs: Sequence[str | os.PathLike], out_dir: str | os.PathLike, seed: int = 0,
                 strengths: dict | None = None, masks: bool = False, progress: bool = True) -> int:
    """Write damaged copies (and masks) of every photo under ``inputs`` to ``out_dir``.

    The damage of a file depends only on ``seed`` and its relative name, not on the other files.
    """
    from repair.damage import PAPER_MIX, damage
    from repair.images import load_gray, save_gray

    strengths = dict(PAPER_MIX if strengths is None else strengths)
    pairs = expand_inputs(inputs)
    out_dir = Path(out_dir)
    plans = plan_all(pairs, out_dir, ("", "_mask") if masks else ("",))
    outputs = plans[0]
    mask_for = dict(zip(outputs, plans[1])) if masks else {}
    names = {path: rel for path, rel in pairs}

    def job(path: Path, out: Path) -> None:
        x_clean = load_gray(path)
        name_key = zlib.crc32(names[path].as_posix().encode())
        x_damaged, mask = damage(x_clean, seed=[[seed, name_key]], **strengths)
        if out in mask_for:
            save_gray(mask.float() * 2 - 1, mask_for[out])
        save_gray(x_damaged, out)

    return run_batch(pairs, job, outputs, desc="damage", progress=progress)
