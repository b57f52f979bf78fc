"""``python -m repair.gantrain``: train chapter 05's StyleGAN2 in the background, or export it.

Trains until ``--steps`` or ``--stop-at``, writing ``checkpoint.pt``, sample grids and loss curves
to ``--out`` every ``--every`` seconds (and when interrupted); a rerun resumes from the checkpoint.
``--export PATH`` writes the EMA generator of a run instead (what ``repair invert`` loads)::

    python -m repair.gantrain --out runs/stylegan --stop-at 03:30 --threads 1
    python -m repair.gantrain --out runs/stylegan --export checkpoints/stylegan-faces64.pt

(``python -m repair.gantrain_cli`` is the same command.)
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from repair.gantrain import GANTrainer, TrainConfig, export_generator, load_faces, parse_stop_at
from repair.images import atomic_write_bytes

__all__ = ["build_parser", "main", "save_loss_plot"]


def build_parser() -> argparse.ArgumentParser:
    """The options of the StyleGAN training command line."""
    from repair.config import data_root

    parser = argparse.ArgumentParser(
        prog="python -m repair.gantrain", description="Train a small StyleGAN2 on a CPU: "
        "non-saturating loss, lazy R1, flips + shifts, EMA generator.")
    parser.add_argument("--out", required=True, help="run folder (checkpoint.pt, samples, curves)")
    parser.add_argument("--data", default=str(data_root() / "train" / "faces-att"))
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=None, help="stop after this many steps")
    parser.add_argument("--stop-at", default=None, help='"HH:MM" UTC or an ISO time')
    parser.add_argument("--every", type=float, default=300, help="seconds between checkpoints")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--export", metavar="PATH", default=None,
                        help="do not train: write the EMA generator of --out's checkpoint.pt to "
                             "PATH (generator only, a few MB) and exit")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: train until ``--steps`` or ``--stop-at``, or export with ``--export``."""
    args = build_parser().parse_args(argv)
    if args.export:
        _export(Path(args.out) / "checkpoint.pt", args.export)
    else:
        _train(args)


def _export(checkpoint: Path, out: str) -> None:
    """Write the EMA generator of ``checkpoint`` to ``out`` and say what was written."""
    from repair.registry import sha256_file

    path = export_generator(checkpoint, out)
    info = torch.load(path, map_location="cpu", weights_only=True)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, sha256 {sha256_file(path)}): "
          f"step {info['step']}, {info['nimg']:,} images seen, exported {info['exported']}; "
          f"samples in {path.with_name(path.stem + '-samples.png')}", flush=True)


def _train(args: argparse.Namespace) -> None:
    """Train (resuming ``--out``'s checkpoint if there is one) until a stop, then checkpoint."""
    torch.set_num_threads(args.threads)
    stop_time = parse_stop_at(args.stop_at)
    cfg = TrainConfig(data_dir=args.data, resolution=args.resolution, batch_size=args.batch_size,
                      seed=args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    images = load_faces(cfg.data_dir, cfg.resolution, cfg.holdout_subjects)
    trainer = GANTrainer(cfg, images, args.device)
    if (out / "checkpoint.pt").exists():
        trainer.load(out / "checkpoint.pt")
        print(f"resumed at step {trainer.step} ({trainer.nimg} images)", flush=True)
    print(f"{len(images)} training faces {tuple(images.shape[1:])}; G "
          f"{sum(p.numel() for p in trainer.net_G.parameters()):,} params, D "
          f"{sum(p.numel() for p in trainer.net_D.parameters()):,}; stop at "
          f"{dt.datetime.fromtimestamp(stop_time, dt.timezone.utc) if stop_time else 'never'}",
          flush=True)
    last = time.time()
    try:
        while (args.steps is None or trainer.step < args.steps) and \
                (stop_time is None or time.time() < stop_time):
            trainer.train_step()
            if time.time() - last >= args.every:
                _checkpoint(trainer, out)
                last = time.time()
    except KeyboardInterrupt:
        print("interrupted: saving a last checkpoint", flush=True)
    _checkpoint(trainer, out)
    print("done", flush=True)


def _checkpoint(trainer: GANTrainer, out: Path) -> None:
    """Save the checkpoint, sample grids and loss curves; print a one-line JSON summary."""
    trainer.save(out / "checkpoint.pt")
    trainer.sample_grid(out / f"samples_{trainer.nimg // 1000:05d}k.png")
    trainer.sample_grid(out / "samples_latest.png")
    save_loss_plot(trainer.history, out / "losses.png")
    recent = trainer.history[-50:]
    summary = {k: float(np.mean([h[k] for h in recent])) for k in
               ("loss_D", "loss_G", "D_real", "D_fake")} if recent else {}
    print(json.dumps({"time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                      "step": trainer.step, "nimg": trainer.nimg, **summary}), flush=True)


def save_loss_plot(history: list[dict], path: str | os.PathLike, smooth: int = 50) -> None:
    """Loss curves of a StyleGAN run (moving averages over ``smooth`` steps) to a PNG file.

    Drawn on a figure of its own through matplotlib's object API, so it works headless and leaves
    the global backend alone.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3), dpi=100)
    axes = fig.subplots(1, 2)
    kernel = np.ones(smooth) / smooth
    for key, ax in (("loss_D", axes[0]), ("loss_G", axes[0]), ("D_real", axes[1]),
                    ("D_fake", axes[1])):
        values = np.array([h[key] for h in history])
        if len(values) >= smooth:
            values = np.convolve(values, kernel, mode="valid")
        ax.plot(values, label=key)
    for ax in axes:
        ax.set_xlabel("step")
        ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    atomic_write_bytes(path, buffer.getvalue())


if __name__ == "__main__":
    main()
