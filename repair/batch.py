"""Running a per-photo job over many files: inputs expanded, every output planned up front, bad
files reported while the batch goes on.

The output policy of every command: an output never lands on an input or on another output of
the run, and a file the run did not create is never replaced unless ``--overwrite`` is given. All
of it is checked before any model loads or any photo is processed (:func:`plan_all`,
:func:`check_out_dir`).
"""

from __future__ import annotations

import os
import sys
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

from repair.images import ImageError, clean_stale_temporaries, find_images, frame_count

__all__ = ["expand_inputs", "expand_frames", "plan_outputs", "plan_all", "check_out_dir",
           "check_new_file", "check_seed", "run_batch", "damage_files"]


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


def expand_frames(pairs: Sequence[tuple[Path, Path]]
                  ) -> tuple[list[tuple[Path, Path]], list[int | None]]:
    """One entry per frame: a multi-page TIFF or animated GIF ``scan.tif`` of 3 frames becomes
    ``scan_frame1``, ``scan_frame2``, ``scan_frame3`` (so nothing is dropped silently).

    Returns:
        ``(pairs, frames)``: pairs with the per-frame names, and the frame index of each
        (``None`` for a single-frame file).
    """
    from repair.images import MAX_FRAMES

    out_pairs: list[tuple[Path, Path]] = []
    frames: list[int | None] = []
    for path, rel in pairs:
        count = frame_count(path)
        if count == 1:
            out_pairs.append((path, rel))
            frames.append(None)
            continue
        if count > MAX_FRAMES:
            raise ValueError(f"{path}: {count} frames is more than {MAX_FRAMES}; split the file "
                             "first")
        width = len(str(count))
        for i in range(count):
            out_pairs.append((path, rel.with_name(f"{rel.stem}_frame{i + 1:0{width}d}"
                                                  f"{rel.suffix}")))
            frames.append(i)
    return out_pairs, frames


def plan_outputs(pairs: Sequence[tuple[Path, Path]], out_dir: Path, suffix: str = "",
                 ext: str = ".png", overwrite: bool = False) -> list[Path]:
    """One output path per input, under ``out_dir``; refuses any plan that would overwrite an input,
    write two results to one file, or (without ``overwrite``) replace a file already there."""
    return plan_all(pairs, out_dir, (suffix,), ext, overwrite)[0]


def plan_all(pairs: Sequence[tuple[Path, Path]], out_dir: Path, suffixes: Sequence[str],
             ext: str = ".png", overwrite: bool = False) -> list[list[Path]]:
    """Every output of a run planned together: one list per suffix (e.g. ``("", "_mask")`` for
    photos and their masks), refusing a plan where any two outputs, of whatever kind, share a file
    (``a_mask.png`` the photo and ``a.png``'s mask), an output would overwrite an input, or
    (without ``overwrite``) an output would replace a file that is already there."""
    inputs = {path.resolve() for path, _ in pairs}
    plans = [[out_dir / rel.with_name(rel.stem + suffix + ext) for _, rel in pairs]
             for suffix in suffixes]
    seen: dict[Path, Path] = {}
    existing: list[Path] = []
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
            if out.is_dir():
                raise ValueError(f"{out} is a folder where an output file would go; rename it "
                                 "or choose another --out folder")
            if not overwrite and (out.exists() or out.is_symlink()):
                existing.append(out)
    if existing:
        more = f" and {len(existing) - 3} more" if len(existing) > 3 else ""
        raise ValueError(f"{', '.join(map(str, existing[:3]))}{more} already exist(s) and this run "
                         "did not write them: pass --overwrite to replace them, or choose another "
                         "--out folder")
    return plans


def check_out_dir(out_dir: str | os.PathLike, option: str = "--out") -> Path:
    """The output folder, checked before any real work starts: a name, not a file, and writable
    (a missing folder is created at the first write, so a run refused later leaves none behind).

    Raises:
        ValueError: an empty name, a file where the folder should be, or a folder that cannot be
            written to; the message names ``option``.
    """
    import tempfile

    if str(out_dir).strip() == "":
        raise ValueError(f"{option} is empty: name the folder to write into (e.g. {option} "
                         "restored)")
    out_dir = Path(out_dir)
    existing = out_dir
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        said = "" if existing == out_dir else f" (its parent {existing} is a file)"
        raise ValueError(f"{option} {out_dir} is a file, not a folder{said}: name a folder (it "
                         "is created if missing)")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        raise ValueError(f"{option} {out_dir}: cannot write there ({err.strerror or err}); "
                         "choose a folder you can write to") from None
    return out_dir


def check_new_file(path: str | os.PathLike, option: str, overwrite: bool = False) -> Path:
    """A single output file named by ``option`` (e.g. ``--json``), checked before the work starts:
    not a folder, its folder writable, and not already there unless ``overwrite``."""
    if str(path).strip() == "":
        raise ValueError(f"{option} is empty: name the file to write")
    path = Path(path)
    if path.is_dir() or str(path).endswith(("/", os.sep)):
        raise ValueError(f"{option} {path} is a folder: name a file (e.g. {path / 'results.json'})")
    if not overwrite and (path.exists() or path.is_symlink()):
        raise ValueError(f"{option} {path} already exists and this run did not write it: pass "
                         "--overwrite to replace it, or name another file")
    check_out_dir(path.parent, f"the folder of {option}")
    return path


def run_batch(pairs: Sequence[tuple[Path, Path]], job: Callable[[Path, Path], None],
              outputs: Sequence[Path], desc: str, progress: bool = True) -> int:
    """Run ``job(input, output)`` for each pair; a failing file is reported and skipped.

    Returns the exit status: 0 if every file worked, 1 if any failed (a summary goes to stderr).
    """
    from tqdm.auto import tqdm

    clean_stale_temporaries(outputs)   # left by a run killed mid-write
    failures = []
    for (path, _), out in tqdm(list(zip(pairs, outputs)), desc=desc, unit="photo",
                               disable=not progress):
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            job(path, out)
        except (ImageError, FileNotFoundError, ValueError, OSError, RuntimeError,
                MemoryError) as err:
            failures.append(f"{path}: {err}" if str(path) not in str(err) else str(err))
    done = len(pairs) - len(failures)
    print(f"{desc}: {done} of {len(pairs)} written", file=sys.stderr)
    for message in failures:
        print(f"  failed: {message}", file=sys.stderr)
    return 1 if failures else 0


def check_seed(seed: int, option: str = "--seed") -> int:
    """A damage seed: a whole number, 0 or more (numpy's seed streams take no negatives)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"{option} must be a whole number, 0 or more; got {seed!r}")
    return seed


def damage_files(inputs: Sequence[str | os.PathLike], out_dir: str | os.PathLike, seed: int = 0,
                 strengths: dict | None = None, masks: bool = False, progress: bool = True,
                 overwrite: bool = False) -> int:
    """Write damaged copies (and masks) of every photo under ``inputs`` to ``out_dir``.

    The damage of a file depends only on ``seed`` and its relative name, not on the other files.
    Every frame of a multi-frame file is damaged (``<name>_frameN.png``). Every output is planned
    and the folder checked before the first photo is read; files already in ``out_dir`` are
    never replaced unless ``overwrite``.
    """
    from repair.damage import DAMAGES, PAPER_MIX, PLATE_DAMAGES, damage
    from repair.images import load_gray, save_gray

    check_seed(seed)
    strengths = dict(PAPER_MIX if strengths is None else strengths)
    for name, value in strengths.items():
        if name not in (*DAMAGES, *PLATE_DAMAGES):
            raise ValueError(f"unknown damage {name!r}: choose from "
                             f"{', '.join((*DAMAGES, *PLATE_DAMAGES))}")
        if not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"--{name} must be between 0 and 1, got {value}")
    out_dir = check_out_dir(out_dir)
    pairs, frames = expand_frames(expand_inputs(inputs))
    plans = plan_all(pairs, out_dir, ("", "_mask") if masks else ("",), overwrite=overwrite)
    outputs = plans[0]
    mask_for = dict(zip(outputs, plans[1])) if masks else {}
    clean_stale_temporaries(mask_for.values())
    item = {out: (rel, frame) for out, (_, rel), frame in zip(outputs, pairs, frames)}

    def job(path: Path, out: Path) -> None:
        """Damage one photo (one frame) and write it, with its mask if asked."""
        rel, frame = item[out]
        x_clean = load_gray(path, frame=frame)
        name_key = zlib.crc32(rel.as_posix().encode())
        x_damaged, mask = damage(x_clean, seed=[[seed, name_key]], **strengths)
        if out in mask_for:
            save_gray(mask.float() * 2 - 1, mask_for[out])
        save_gray(x_damaged, out)

    return run_batch(pairs, job, outputs, desc="damage", progress=progress)
