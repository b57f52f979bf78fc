"""The networks: the paper's DCGAN pair exactly as its Figs. 3 and 4, and the U-Net + PatchGAN fix.

One interface for every generator: ``net_G(x_damaged) -> x_restored``, both ``(B, 1, H, W)`` in
``[-1, 1]``. One for every discriminator: ``net_D(x_damaged, x_candidate) -> scores``; the
unconditional paper discriminator ignores ``x_damaged``. Each network records its constructor
arguments in ``self.hparams`` and names its architecture in the class attribute ``arch``, so
``build_generator(net.arch, **net.hparams)`` rebuilds it (that is how a checkpoint is checked).

Weights start from N(0, 0.02) as the paper says (:func:`repair.blocks.init_weights`); the U-Net's
building blocks (:class:`repair.blocks.DoubleConv`, :class:`repair.blocks.Up`) are in
:mod:`repair.blocks`.
"""

from __future__ import annotations

import torch
from torch import nn

from repair.blocks import (DoubleConv, Up, bounded_residual, check_images, init_weights,
                           norm_layer)
from repair.nafnet import MaskedNAFRestorer

__all__ = [
    "PaperGenerator", "PaperDiscriminator", "UNetGenerator", "PatchDiscriminator", "GENERATORS",
    "DISCRIMINATORS", "build_generator", "build_discriminator", "REAL", "unwrap",
]

REAL = 1  # column of the paper discriminator's softmax that we read as P(real)


def unwrap(net: nn.Module) -> nn.Module:
    """The network inside a DistributedDataParallel / DataParallel wrapper (or ``net`` itself)."""
    return getattr(net, "module", net)


# ---------------------------------------------------------------- the paper's networks (Figs 3-4)


class PaperGenerator(nn.Module):
    """The paper's generator (Fig. 4): transposed convolutions up to 4x the size, max-pooled back.

    With ``ngf=32`` it has exactly the paper's 16 layers and 693,696 parameters; at 256x256 its
    widest activation is 64x1036x1036. Works at any input size (the output has the input's size).

    Args:
        ngf: width of the last hidden layer; the layers have 8, 4, 2 and 1 times ``ngf`` channels.
    """

    arch = "paper-generator"

    def __init__(self, ngf: int = 32):
        super().__init__()
        self.hparams = {"ngf": ngf}

        def block(c_in: int, c_out: int, stride: int, padding: int) -> list[nn.Module]:
            """Transposed convolution (4x4, no bias), BatchNorm, ReLU."""
            return [nn.ConvTranspose2d(c_in, c_out, 4, stride, padding, bias=False),
                    nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]

        self.main = nn.Sequential(                 # shapes for a (B, 1, 256, 256) input, ngf=32
            *block(1, 8 * ngf, 1, 0),              # (B, 256, 259, 259)
            *block(8 * ngf, 4 * ngf, 2, 1),        # (B, 128, 518, 518)
            *block(4 * ngf, 2 * ngf, 2, 1),        # (B, 64, 1036, 1036)
            nn.MaxPool2d(4, 4),                    # (B, 64, 259, 259)
            *block(2 * ngf, ngf, 1, 1),            # (B, 32, 260, 260)
            nn.MaxPool2d(4, 1),                    # (B, 32, 257, 257)
            nn.ConvTranspose2d(ngf, 1, 4, 1, 2, bias=False),  # (B, 1, 256, 256)
            nn.Tanh(),
        )
        init_weights(self)

    def forward(self, x_damaged: torch.Tensor) -> torch.Tensor:
        """Restore a batch: (B, 1, H, W) in [-1, 1] -> (B, 1, H, W) in [-1, 1]."""
        check_images(x_damaged, "x_damaged")
        return self.main(x_damaged)


class PaperDiscriminator(nn.Module):
    """The paper's discriminator (Fig. 3): five strided convolutions, a max pool and three linears.

    ``head="softmax"`` (the paper) ends in ``Linear(100, 2)`` + softmax and returns probabilities
    ``(B, 2)``, column :data:`REAL` read as P(real); with ``ndf=32`` at 256x256 that is exactly the
    paper's 22 layers and 1,851,426 parameters. The paper wrote ``nn.Softmax()`` without ``dim``;
    on its ``(B, 2)`` output PyTorch's implicit choice is ``dim=1`` (with a deprecation warning),
    but on a flat ``(B,)`` or a 3-D tensor the same call normalises over the batch, coupling the
    samples, so we write ``dim=1``. ``head="logit"`` (the fix) ends in ``Linear(100, 1)`` and
    returns one raw logit ``(B, 1)`` for ``BCEWithLogitsLoss``. The attribute ``returns_logits``
    tells a training loop which one it has.

    The max pool's kernel is ``image_size // 64`` (4 at 256, as in the paper), so the linear head
    sees the paper's 2x2x256 features at every size from 64 up; at 32 it sees 1x1x256 (and
    BatchNorm then needs training batches of at least 2).

    Args:
        ndf: width of the first layer; the convolutions have 1, 2, 4, 8, 8 times ``ndf`` channels.
        image_size: side of the square images it will judge (a multiple of 16, at least 32).
        head: ``"softmax"`` (paper) or ``"logit"`` (fix).
    """

    arch = "paper-discriminator"

    def __init__(self, ndf: int = 32, image_size: int = 256, head: str = "softmax"):
        super().__init__()
        if head not in ("softmax", "logit"):
            raise ValueError(f"head must be 'softmax' (the paper) or 'logit' (the fix), got {head!r}")
        if image_size < 32 or image_size % 16:
            raise ValueError(f"PaperDiscriminator needs image_size a multiple of 16 and >= 32 "
                             f"(e.g. 32, 64, 128, 256), got {image_size}")
        self.hparams = {"ndf": ndf, "image_size": image_size, "head": head}
        self.returns_logits = head == "logit"
        pool = max(1, image_size // 64)
        side = (image_size // 16) // pool // 2     # spatial side after the last convolution

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            """Strided 4x4 convolution (no bias, halves H and W), BatchNorm, LeakyReLU(0.2)."""
            return [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out),
                    nn.LeakyReLU(0.2, inplace=True)]

        self.features = nn.Sequential(             # shapes for (B, 1, 256, 256), ndf=32
            nn.Conv2d(1, ndf, 4, 2, 1, bias=False),  # (B, 32, 128, 128)
            nn.LeakyReLU(0.2, inplace=True),
            *block(ndf, 2 * ndf),                  # (B, 64, 64, 64)
            *block(2 * ndf, 4 * ndf),              # (B, 128, 32, 32)
            *block(4 * ndf, 8 * ndf),              # (B, 256, 16, 16)
            nn.MaxPool2d(pool, pool),              # (B, 256, 4, 4)
            *block(8 * ndf, 8 * ndf),              # (B, 256, 2, 2)
            nn.Flatten(),                          # (B, 1024)
        )
        head_layers: list[nn.Module] = [nn.Linear(100, 2), nn.Softmax(dim=1)] if head == "softmax" \
            else [nn.Linear(100, 1)]
        self.classifier = nn.Sequential(
            nn.Linear(8 * ndf * side * side, 100), nn.ReLU(inplace=True),  # (B, 100)
            nn.Linear(100, 100), nn.ReLU(inplace=True),                    # (B, 100)
            *head_layers,                                                  # (B, 2) or (B, 1)
        )
        init_weights(self)

    def forward(self, x_damaged: torch.Tensor | None, x_candidate: torch.Tensor) -> torch.Tensor:
        """Score candidates: (B, 1, S, S) -> P(fake), P(real) ``(B, 2)`` or one logit ``(B, 1)``.

        Args:
            x_damaged: ignored (this discriminator is unconditional); may be None.
            x_candidate: (B, 1, S, S) in [-1, 1], S the ``image_size`` it was built for.
        """
        check_images(x_candidate, "x_candidate")
        size = self.hparams["image_size"]
        if x_candidate.shape[-2:] != (size, size):
            raise ValueError(f"this PaperDiscriminator was built for {size}x{size} images, got "
                             f"{tuple(x_candidate.shape[-2:])}; build one with "
                             f"image_size={x_candidate.shape[-1]} (square images only)")
        return self.classifier(self.features(x_candidate))


# ---------------------------------------------------------------- the fix: U-Net + PatchGAN


class UNetGenerator(nn.Module):
    """An encoder-decoder with skip connections (U-Net) that predicts a correction of its input.

    ``depth`` times: max-pool by 2 and double the channels (capped at ``16 * ngf``); then back up,
    concatenating the encoder's features of the same size. With ``residual=True`` the last 1x1
    convolution gives a per-pixel ``delta`` and the output is :func:`bounded_residual` of the input,
    so an untrained network already returns roughly its input; else the output is ``tanh`` of it.

    Args:
        ngf: channels at full resolution.
        depth: number of 2x down-samplings; H and W must be divisible by ``2**depth``.
        upsample: ``"bilinear"`` (no checkerboard) or ``"transpose"`` (to demonstrate one).
        norm: ``"batch"``, ``"instance"`` or ``"none"``.
        residual: predict a correction of the input (True) or the image itself (False).
    """

    arch = "unet"

    def __init__(self, ngf: int = 32, depth: int = 4, upsample: str = "bilinear",
                 norm: str = "batch", residual: bool = True):
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        self.hparams = {"ngf": ngf, "depth": depth, "upsample": upsample, "norm": norm,
                        "residual": residual}
        widths = [ngf * min(2 ** i, 16) for i in range(depth + 1)]  # e.g. 32, 64, 128, 256, 512
        self.inc = DoubleConv(1, widths[0], norm)
        self.downs = nn.ModuleList(
            nn.Sequential(nn.MaxPool2d(2), DoubleConv(widths[i], widths[i + 1], norm))
            for i in range(depth))
        self.ups = nn.ModuleList(
            Up(widths[i + 1], widths[i], upsample, norm) for i in reversed(range(depth)))
        self.outc = nn.Conv2d(widths[0], 1, 1)
        init_weights(self)

    def forward(self, x_damaged: torch.Tensor) -> torch.Tensor:
        """Restore a batch: (B, 1, H, W) in [-1, 1] -> (B, 1, H, W) in [-1, 1]."""
        check_images(x_damaged, "x_damaged")
        step = 2 ** self.hparams["depth"]
        h, w = x_damaged.shape[-2:]
        if h % step or w % step:
            fit = sorted({max(step, h // step * step), (h + step - 1) // step * step})
            raise ValueError(f"UNetGenerator(depth={self.hparams['depth']}) needs H and W divisible "
                             f"by {step}, got {h}x{w}: crop or pad to e.g. "
                             f"{' or '.join(str(s) for s in fit)} pixels, or lower depth")
        skips = [self.inc(x_damaged)]              # (B, ngf, H, W)
        for down in self.downs:
            skips.append(down(skips[-1]))          # (B, 2ngf, H/2, W/2) ... bottleneck
        y = skips.pop()
        for up in self.ups:
            y = up(y, skips.pop())                 # back to (B, ngf, H, W)
        delta = self.outc(y)                       # (B, 1, H, W)
        if self.hparams["residual"]:
            return bounded_residual(x_damaged, delta)
        return torch.tanh(delta)


class PatchDiscriminator(nn.Module):
    """The pix2pix PatchGAN: judges every 70x70 patch of (damaged, candidate) pairs.

    Input is the damaged photo and the candidate stacked as 2 channels; output one raw logit per
    patch, ``(B, 1, 30, 30)`` at 256x256 with ``n_layers=3`` (receptive field 70 pixels).

    Args:
        ndf: channels of the first layer, doubled per layer up to ``8 * ndf``.
        n_layers: number of stride-2 convolutions; 3 gives 70x70 patches.
        norm: ``"batch"``, ``"instance"`` or ``"none"``.
    """

    arch = "patch"
    returns_logits = True

    def __init__(self, ndf: int = 64, n_layers: int = 3, norm: str = "batch"):
        super().__init__()
        self.hparams = {"ndf": ndf, "n_layers": n_layers, "norm": norm}
        bias = norm == "none"
        layers: list[nn.Module] = [nn.Conv2d(2, ndf, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        c_out = ndf
        for n in range(1, n_layers + 1):
            c_in, c_out = c_out, ndf * min(2 ** n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(c_in, c_out, 4, stride, 1, bias=bias), norm_layer(norm, c_out),
                       nn.LeakyReLU(0.2, inplace=True)]
        layers.append(nn.Conv2d(c_out, 1, 4, 1, 1))
        self.main = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x_damaged: torch.Tensor, x_candidate: torch.Tensor) -> torch.Tensor:
        """Score every patch: two (B, 1, H, W) batches -> logits (B, 1, H', W')."""
        check_images(x_damaged, "x_damaged")
        check_images(x_candidate, "x_candidate")
        if x_damaged.shape != x_candidate.shape:
            raise ValueError(f"x_damaged {tuple(x_damaged.shape)} and x_candidate "
                             f"{tuple(x_candidate.shape)} must have the same shape")
        n = self.hparams["n_layers"]
        side = min(x_candidate.shape[-2:])
        if (side >> n) - 2 < 1:                    # n halvings, then two 4x4 convs of stride 1
            raise ValueError(f"PatchDiscriminator(n_layers={n}) needs images of at least "
                             f"{3 * 2 ** n} pixels a side, got {side}")
        return self.main(torch.cat([x_damaged, x_candidate], dim=1))


# ---------------------------------------------------------------- networks by name

GENERATORS: dict[str, type[nn.Module]] = {
    c.arch: c for c in (PaperGenerator, UNetGenerator, MaskedNAFRestorer)}
DISCRIMINATORS: dict[str, type[nn.Module]] = {
    c.arch: c for c in (PaperDiscriminator, PatchDiscriminator)}


def build_generator(arch: str, **hparams) -> nn.Module:
    """A generator by architecture name (``"paper-generator"``, ``"unet"`` ...) and its kwargs."""
    return _build(GENERATORS, "generator", arch, hparams)


def build_discriminator(arch: str, **hparams) -> nn.Module:
    """A discriminator by name (``"paper-discriminator"`` or ``"patch"``) and its kwargs."""
    return _build(DISCRIMINATORS, "discriminator", arch, hparams)


def _build(registry: dict[str, type[nn.Module]], kind: str, arch: str, hparams: dict) -> nn.Module:
    if arch not in registry:
        raise ValueError(f"unknown {kind} architecture {arch!r}: choose one of {', '.join(registry)}")
    try:
        return registry[arch](**hparams)
    except TypeError as err:
        raise ValueError(f"bad hyper-parameters for {arch!r}: {err}") from None
