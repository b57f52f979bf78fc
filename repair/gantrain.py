"""Train a small StyleGAN2 on a CPU: non-saturating loss, lazy R1, flips + shifts, EMA generator.

The training is the StyleGAN2 recipe cut down to what a laptop can run: the logistic
non-saturating loss, an R1 penalty on real images every ``r1_every`` steps, style mixing, an
exponential moving average of the generator (the one we keep), and differentiable augmentations
(horizontal flips and small translations, applied to real and fake images alike) so that a few
hundred photos last longer before the discriminator memorises them. Checkpoints are atomic,
carry the config and resume exactly where they stopped.

Command line (:mod:`repair.gantrain_cli`; the chapter's background run, then the export of its
EMA generator)::

    python -m repair.gantrain --out runs/stylegan --stop-at 03:30 --threads 1
    python -m repair.gantrain --out runs/stylegan --export checkpoints/stylegan-faces64.pt
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from repair.images import atomic_write_bytes, load_gray, save_gray
from repair.stylegan import GENERATOR_KIND, StyleGAN2Discriminator, StyleGAN2Generator

__all__ = ["TrainConfig", "load_faces", "augment", "GANTrainer", "parse_stop_at",
           "export_generator"]

TRAINER_KIND = "repair.gantrain"


@dataclass
class TrainConfig:
    """Everything a run needs; saved in every checkpoint."""

    data_dir: str = ""  # default: <data_root>/train/faces-att
    holdout_subjects: tuple[int, ...] = (38, 39, 40)  # AT&T subjects kept out for inversion demos
    resolution: int = 64
    z_dim: int = 128
    w_dim: int = 128
    mapping_layers: int = 2
    channel_base: int = 1024
    channel_max: int = 128
    batch_size: int = 16
    lr: float = 0.0025
    betas: tuple[float, float] = (0.0, 0.99)
    r1_gamma: float = 0.1
    r1_every: int = 16
    style_mixing: float = 0.5
    ema_kimg: float = 5.0  # EMA half-life in thousands of images ...
    ema_rampup: float = 0.05  # ... but at most this fraction of the images seen so far
    translate: float = 0.125  # max shift as a fraction of the side
    seed: int = 0


def load_faces(data_dir: str | os.PathLike, resolution: int = 64,
               holdout_subjects: tuple[int, ...] = ()) -> torch.Tensor:
    """AT&T faces (``sNN/k.pgm`` or ``sNN_k.pgm``), centre-cropped square and resized.

    Args:
        data_dir: folder of ``.pgm`` files (searched recursively).
        resolution: output side in pixels.
        holdout_subjects: subject numbers to leave out (kept for testing inversions).

    Returns:
        ``(N, 1, resolution, resolution)`` in ``[-1, 1]``.
    """
    files = sorted(Path(data_dir).rglob("*.pgm"))
    if not files:
        raise FileNotFoundError(f"{data_dir}: no .pgm faces found; pass the AT&T faces folder "
                                "(../shared/data/train/faces-att)")
    faces = []
    for path in files:
        match = re.search(r"s(\d+)", str(path.relative_to(data_dir)))
        if match and int(match.group(1)) in holdout_subjects:
            continue
        x = load_gray(path)  # (1, H, W)
        side = min(x.shape[-2:])
        top, left = (x.shape[-2] - side) // 2, (x.shape[-1] - side) // 2
        x = x[:, top:top + side, left:left + side]
        faces.append(F.interpolate(x[None], size=resolution, mode="area")[0]
                     if side >= resolution else
                     F.interpolate(x[None], size=resolution, mode="bilinear", antialias=True)[0])
    return torch.stack(faces).clamp(-1, 1)


def augment(x: torch.Tensor, translate: float, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal flips and integer shifts (reflect padding); differentiable in ``x``.

    Args:
        x: ``(B, C, H, W)``.
        translate: largest shift as a fraction of the side (0 switches shifts off).
        generator: random stream (CPU).
    """
    batch, _, height, width = x.shape
    flip = torch.rand(batch, generator=generator) < 0.5
    x = torch.where(flip.to(x.device)[:, None, None, None], x.flip(-1), x)
    pad = int(round(translate * min(height, width)))
    if pad == 0:
        return x
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    shifts = torch.randint(0, 2 * pad + 1, (batch, 2), generator=generator).tolist()
    return torch.stack([padded[i, :, dy:dy + height, dx:dx + width]
                        for i, (dy, dx) in enumerate(shifts)])


def parse_stop_at(text: str | None, now: dt.datetime | None = None) -> float | None:
    """``"03:30"`` (UTC, today, or tomorrow if passed) or an ISO time -> Unix time; None -> None."""
    if not text:
        return None
    now = now or dt.datetime.now(dt.timezone.utc)
    if re.fullmatch(r"\d{1,2}:\d{2}", text):
        hour, minute = map(int, text.split(":"))
        stop = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if stop <= now:
            stop += dt.timedelta(days=1)
        return stop.timestamp()
    stop = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if stop.tzinfo is None:
        stop = stop.replace(tzinfo=dt.timezone.utc)
    return stop.timestamp()


def _atomic_torch_save(obj, path: Path) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


class GANTrainer:
    """Holds ``net_G``, ``net_D``, the EMA generator ``net_G_ema``, the optimisers and the step.

    Args:
        cfg: the run's :class:`TrainConfig`.
        images: training images ``(N, 1, R, R)`` in ``[-1, 1]``.
        device: where to train.
    """

    def __init__(self, cfg: TrainConfig, images: torch.Tensor, device: str | torch.device = "cpu"):
        self.cfg, self.device = cfg, torch.device(device)
        torch.manual_seed(cfg.seed)
        size = dict(resolution=cfg.resolution, channels=images.shape[1],
                    channel_base=cfg.channel_base, channel_max=cfg.channel_max)
        self.net_G = StyleGAN2Generator(z_dim=cfg.z_dim, w_dim=cfg.w_dim,
                                        mapping_layers=cfg.mapping_layers, **size).to(self.device)
        self.net_D = StyleGAN2Discriminator(**size).to(self.device)
        self.net_G_ema = copy.deepcopy(self.net_G).eval().requires_grad_(False)
        self.opt_G = torch.optim.Adam(self.net_G.parameters(), lr=cfg.lr, betas=cfg.betas)
        ratio = cfg.r1_every / (cfg.r1_every + 1)  # lazy regularisation keeps the D's momentum
        self.opt_D = torch.optim.Adam(self.net_D.parameters(), lr=cfg.lr * ratio,
                                      betas=(cfg.betas[0] ** ratio, cfg.betas[1] ** ratio))
        self.images = images.to(self.device)
        self.rng = torch.Generator().manual_seed(cfg.seed)
        self.step, self.nimg, self.history = 0, 0, []
        self.z_fixed = torch.randn(64, cfg.z_dim, generator=torch.Generator().manual_seed(1234))

    def _latents(self, batch: int) -> torch.Tensor:
        """W+ styles ``(B, N_L, w_dim)`` for fresh z, with style mixing."""
        z = torch.randn(batch, 2, self.cfg.z_dim, generator=self.rng).to(self.device)
        ws = self.net_G.broadcast(self.net_G.mapping(z[:, 0], update_w_avg=True))
        if torch.rand([], generator=self.rng) < self.cfg.style_mixing:
            cut = int(torch.randint(1, self.net_G.num_ws, [], generator=self.rng))
            ws = ws.clone()
            ws[:, cut:] = self.net_G.mapping(z[:, 1])[:, None]
        return ws

    def _aug(self, x: torch.Tensor) -> torch.Tensor:
        return augment(x, self.cfg.translate, self.rng)

    def train_step(self) -> dict:
        """One D update (with lazy R1) and one G update; returns the step's numbers."""
        cfg, batch = self.cfg, self.cfg.batch_size
        index = torch.randint(0, len(self.images), (batch,), generator=self.rng)
        x_real = self.images[index.to(self.device)]  # (B, 1, R, R)
        # discriminator: fakes towards 0, reals towards 1
        self.net_D.requires_grad_(True)
        with torch.no_grad():
            x_fake = self.net_G.synthesis(self._latents(batch), noise_mode="random")
        logits_fake = self.net_D(self._aug(x_fake))
        x_aug = self._aug(x_real).detach()
        do_r1 = cfg.r1_gamma > 0 and self.step % cfg.r1_every == 0
        x_aug.requires_grad_(do_r1)
        logits_real = self.net_D(x_aug)
        loss_D = F.softplus(logits_fake).mean() + F.softplus(-logits_real).mean()
        r1 = torch.zeros([])
        if do_r1:
            grad, = torch.autograd.grad(logits_real.sum(), x_aug, create_graph=True)
            r1 = grad.square().sum(dim=[1, 2, 3]).mean()
            loss_D = loss_D + r1 * (cfg.r1_gamma / 2) * cfg.r1_every
        self.opt_D.zero_grad(set_to_none=True)
        loss_D.backward()
        self.opt_D.step()
        # generator: non-saturating loss, D frozen
        self.net_D.requires_grad_(False)
        x_fake = self.net_G.synthesis(self._latents(batch), noise_mode="random")
        loss_G = F.softplus(-self.net_D(self._aug(x_fake))).mean()
        self.opt_G.zero_grad(set_to_none=True)
        loss_G.backward()
        self.opt_G.step()
        self.step += 1
        self.nimg += batch
        self._update_ema()
        record = dict(step=self.step, nimg=self.nimg, loss_D=loss_D.item(), loss_G=loss_G.item(),
                      r1=r1.item() if do_r1 else None, D_real=logits_real.mean().item(),
                      D_fake=logits_fake.mean().item())
        self.history.append(record)
        return record

    @torch.no_grad()
    def _update_ema(self) -> None:
        half_life = min(self.cfg.ema_kimg * 1000, self.nimg * self.cfg.ema_rampup)
        beta = 0.5 ** (self.cfg.batch_size / max(half_life, 1e-8))
        for p_ema, p in zip(self.net_G_ema.parameters(), self.net_G.parameters()):
            p_ema.copy_(p.lerp(p_ema, beta))
        for b_ema, b in zip(self.net_G_ema.buffers(), self.net_G.buffers()):
            b_ema.copy_(b)

    def generator_payload(self) -> dict:
        """The EMA generator in :func:`repair.stylegan_io.load_stylegan`'s format."""
        return {"kind": GENERATOR_KIND, "config": dict(self.net_G_ema.config),
                "state_dict": {k: v.cpu() for k, v in self.net_G_ema.state_dict().items()},
                "step": self.step, "nimg": self.nimg}

    def save(self, path: str | os.PathLike) -> Path:
        """Checkpoint everything (atomically): config, networks, optimisers, random state."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_torch_save({
            "kind": TRAINER_KIND, "config": dataclasses.asdict(self.cfg), "step": self.step,
            "nimg": self.nimg, "G": self.net_G.state_dict(), "D": self.net_D.state_dict(),
            "G_ema": self.generator_payload(), "opt_G": self.opt_G.state_dict(),
            "opt_D": self.opt_D.state_dict(), "rng": self.rng.get_state(),
            "torch_rng": torch.get_rng_state(),  # the generator's random noise inputs
            "history": self.history}, path)
        return path

    def load(self, path: str | os.PathLike) -> "GANTrainer":
        """Resume from a checkpoint written by :meth:`save` with the same config."""
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(ckpt, dict) or ckpt.get("kind") != TRAINER_KIND:
            raise ValueError(f"{path}: not a repair.gantrain checkpoint; start a fresh run or "
                             "pass the right --out folder")
        if ckpt["config"] != dataclasses.asdict(self.cfg):
            raise ValueError(f"{path}: written with a different config {ckpt['config']}; use "
                             "the same settings or another --out folder")
        self.net_G.load_state_dict(ckpt["G"])
        self.net_D.load_state_dict(ckpt["D"])
        self.net_G_ema.load_state_dict(ckpt["G_ema"]["state_dict"])
        self.opt_G.load_state_dict(ckpt["opt_G"])
        self.opt_D.load_state_dict(ckpt["opt_D"])
        self.rng.set_state(ckpt["rng"])
        if "torch_rng" in ckpt:
            torch.set_rng_state(ckpt["torch_rng"])
        self.step, self.nimg, self.history = ckpt["step"], ckpt["nimg"], ckpt["history"]
        return self

    @torch.no_grad()
    def sample_grid(self, path: str | os.PathLike, rows: int = 8) -> Path:
        """An ``rows x rows`` PNG of EMA-generator samples for fixed z (same faces every time)."""
        img = self.net_G_ema(self.z_fixed[:rows * rows].to(self.device), noise_mode="const")
        img = img.clamp(-1, 1).cpu()  # (rows^2, 1, R, R)
        res = img.shape[-1]
        grid = img.reshape(rows, rows, 1, res, res).permute(2, 0, 3, 1, 4).reshape(1, rows * res,
                                                                                  rows * res)
        return save_gray(grid, path)


def export_generator(checkpoint: str | os.PathLike, out: str | os.PathLike,
                     samples: bool = True) -> Path:
    """Write the EMA generator of a training ``checkpoint`` to ``out`` (generator only, float32).

    The file is :func:`repair.stylegan_io.save_stylegan`'s format (a few MB, readable by
    :func:`repair.stylegan_io.load_stylegan`) plus what the manifest needs: ``step``, ``nimg``
    (images seen), the training ``train_config``, the SHA-256 of the source checkpoint. With
    ``samples``, an 8x8 grid of samples (the training run's fixed z) goes to ``<out>-samples.png``.
    """
    from repair.registry import sha256_file
    from repair.stylegan_io import load_stylegan, save_stylegan

    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"{checkpoint}: no such training checkpoint; pass the "
                                "checkpoint.pt that `python -m repair.gantrain --out RUN` writes")
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("kind") != TRAINER_KIND:
        raise ValueError(f"{checkpoint}: not a repair.gantrain checkpoint")
    net_G = load_stylegan(checkpoint)  # the EMA generator (key "G_ema")
    history = ckpt.get("history") or []
    if samples:
        z = torch.randn(64, net_G.z_dim, generator=torch.Generator().manual_seed(1234))
        with torch.no_grad():
            img = net_G(z, noise_mode="const").clamp(-1, 1)  # (64, 1, R, R)
        res = img.shape[-1]
        grid = img.reshape(8, 8, 1, res, res).permute(2, 0, 3, 1, 4).reshape(1, 8 * res, 8 * res)
        save_gray(grid, Path(out).with_name(Path(out).stem + "-samples.png"))
    return save_stylegan(net_G, out, step=int(ckpt["step"]), nimg=int(ckpt["nimg"]),
                          train_config=ckpt["config"], source_sha256=sha256_file(checkpoint),
                          exported=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                          last_losses={k: float(np.mean([h[k] for h in history[-50:]]))
                                       for k in ("loss_D", "loss_G")} if history else {})


if __name__ == "__main__":
    # `python -m repair.gantrain ...` (the commands of checkpoints/STYLEGAN.md) runs the command
    # line, which lives above this module in repair.gantrain_cli and is loaded by name here.
    import importlib

    importlib.import_module("repair.gantrain_cli").main()
