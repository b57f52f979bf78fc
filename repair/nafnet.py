"""The restorer of record: a mask-guided NAFNet that starts as the identity (chapter 03).

Built from the blocks of NAFNet (Chen et al., ECCV 2022), re-implemented here for one gray
channel and a CPU:

* :class:`NAFBlock`: LayerNorm, 1x1 conv, 3x3 depthwise conv, *SimpleGate* (multiply the two
  halves of the channels), *simplified channel attention* (global mean -> 1x1 conv -> multiply),
  1x1 conv; then a feed-forward half with another SimpleGate. Each half is added back with a
  per-channel scale initialised to **zero**, so a fresh block is exactly the identity.
* :class:`NAFUNet`: those blocks in a U-Net with *additive* skips (strided 2x2 conv down,
  1x1 conv + pixel shuffle up).
* :class:`MaskedNAFRestorer` (``arch = "nafnet"``), the restorer itself:

  1. a small NAF U-Net finds the damage: one logit per pixel (trained against the masks that
     :func:`repair.damage.damage` returns);
  2. a second NAF U-Net sees the photo *and* the predicted mask and predicts a change;
  3. a global branch (pooled bottleneck features -> gain and offset of the whole photo) corrects
     faded contrast, a fault of the whole photo that local filters cannot see;
  4. output = globally corrected input + change (a *global residual*);
  5. optionally (``sharpen_branch``) a last global branch estimates how blurred the whole photo
     is (from the same pooled features and the input's detail energy at two scales) and sharpens
     the output by that much unsharp mask, ``y + a_sigma (y - G_sigma(y))`` for sigma 1 and 2 px:
     blur is also a fault of the whole photo, and an explicit amount lets "not blurred" mean
     exactly zero sharpening.

  The last layers of (2), (3) and (4) start at zero: the untrained network returns its input
  exactly.

``net_G(x)`` restores, ``(B, 1, H, W) -> (B, 1, H, W)`` in ``[-1, 1]``, any H and W (padded to a
multiple of 16 inside); ``net_G(x, with_mask=True)`` also returns the damage logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LayerNorm2d", "SimpleGate", "NAFBlock", "NAFUNet", "MaskedNAFRestorer"]


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of every pixel of a ``(B, C, H, W)`` map."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise every pixel over the channels: ``(B, C, H, W)`` -> same shape."""
        mean = x.mean(1, keepdim=True)                       # (B, 1, H, W)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias


class SimpleGate(nn.Module):
    """Split the channels in two halves and multiply them: ``(B, 2C, H, W) -> (B, C, H, W)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 2C, H, W)`` -> ``(B, C, H, W)``."""
        a, b = x.chunk(2, dim=1)
        return a * b


class NAFBlock(nn.Module):
    """One NAFNet block; ``beta`` and ``gamma`` start at zero, so it starts as the identity."""

    def __init__(self, channels: int):
        super().__init__()
        c, c2 = channels, 2 * channels
        self.norm1 = LayerNorm2d(c)
        self.conv1 = nn.Conv2d(c, c2, 1)
        self.dwconv = nn.Conv2d(c2, c2, 3, padding=1, groups=c2)
        self.gate = SimpleGate()
        self.attention = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, c, 1))
        self.conv2 = nn.Conv2d(c, c, 1)
        self.norm2 = LayerNorm2d(c)
        self.ffn_in = nn.Conv2d(c, c2, 1)
        self.ffn_out = nn.Conv2d(c, c, 1)
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` -> same shape: x plus the two gated, scaled branches."""
        y = self.gate(self.dwconv(self.conv1(self.norm1(x))))    # (B, C, H, W)
        y = self.conv2(y * self.attention(y))
        x = x + self.beta * y
        y = self.ffn_out(self.gate(self.ffn_in(self.norm2(x))))
        return x + self.gamma * y


def _stage(channels: int, count: int) -> nn.Sequential:
    return nn.Sequential(*[NAFBlock(channels) for _ in range(count)])


class NAFUNet(nn.Module):
    """NAF blocks in a U-Net with additive skips; returns the full-resolution features.

    Args:
        c_in: input channels.
        width: channels at full resolution (doubled at every level down).
        enc_blocks: blocks per encoder level (the number of levels is its length).
        middle_blocks: blocks at the bottleneck.
        dec_blocks: blocks per decoder level, from the deepest up (same length as ``enc_blocks``).
    """

    def __init__(self, c_in: int, width: int, enc_blocks: tuple[int, ...],
                 middle_blocks: int, dec_blocks: tuple[int, ...]):
        super().__init__()
        if len(enc_blocks) != len(dec_blocks):
            raise ValueError(f"enc_blocks {enc_blocks} and dec_blocks {dec_blocks} must have the "
                             "same number of levels")
        self.intro = nn.Conv2d(c_in, width, 3, padding=1)
        self.encoders, self.downs = nn.ModuleList(), nn.ModuleList()
        c = width
        for count in enc_blocks:
            self.encoders.append(_stage(c, count))
            self.downs.append(nn.Conv2d(c, 2 * c, 2, stride=2))
            c *= 2
        self.middle = _stage(c, middle_blocks)
        self.bottleneck_channels = c
        self.ups, self.decoders = nn.ModuleList(), nn.ModuleList()
        for count in dec_blocks:
            self.ups.append(nn.Sequential(nn.Conv2d(c, 2 * c, 1, bias=False), nn.PixelShuffle(2)))
            c //= 2
            self.decoders.append(_stage(c, count))
        self.levels = len(enc_blocks)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(features (B, width, H, W), bottleneck (B, C_mid, H/2^L, W/2^L))``."""
        y = self.intro(x)
        skips = []
        for encoder, down in zip(self.encoders, self.downs):
            y = encoder(y)
            skips.append(y)
            y = down(y)
        bottom = y = self.middle(y)
        for up, decoder, skip in zip(self.ups, self.decoders, reversed(skips)):
            y = decoder(up(y) + skip)
        return y, bottom


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of ``(B, 1, H, W)`` with edges replicated (a separable 6-sigma kernel)."""
    radius = max(1, int(3 * sigma + 0.5))
    taps = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    kernel = kernel / kernel.sum()
    x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1))
    return F.conv2d(x, kernel.view(1, 1, -1, 1))


class MaskedNAFRestorer(nn.Module):
    """Find the damage, then repair it: the restorer of record (see the module's docstring).

    Args:
        width: channels of the restoring U-Net at full resolution.
        enc_blocks, middle_blocks, dec_blocks: its blocks (see :class:`NAFUNet`).
        mask_width: channels of the damage-finding U-Net (0: no mask branch).
        mask_blocks: blocks per level of the damage-finding U-Net (3 levels, 1 middle block).
        global_branch: predict a gain and offset for the whole photo (faded contrast).
        sharpen_branch: predict how much unsharp mask (sigma 1 and 2 px) the restored photo needs.
        sharpen_deadzone: amounts within this of zero become zero, the others move this much
            closer to it (a soft threshold): a photo the branch is unsure about is left alone.
    """

    SHARPEN_SIGMAS = (1.0, 2.0)
    SHARPEN_SCALE = 8.0
    """Amounts are this times the branch's linear output: a few hundred steps of AdamW move them
    by about one, where the unscaled branch would need thousands."""

    arch = "nafnet"

    def __init__(self, width: int = 16, enc_blocks: tuple[int, ...] = (1, 1, 1, 4),
                 middle_blocks: int = 2, dec_blocks: tuple[int, ...] = (1, 1, 1, 1),
                 mask_width: int = 8, mask_blocks: int = 1, global_branch: bool = True,
                 sharpen_branch: bool = False, sharpen_deadzone: float = 0.0):
        super().__init__()
        enc_blocks, dec_blocks = tuple(int(b) for b in enc_blocks), tuple(int(b) for b in dec_blocks)
        limits = {"width": (1, 256), "middle_blocks": (0, 64), "mask_width": (0, 256),
                  "mask_blocks": (1, 16)}
        values = {"width": width, "middle_blocks": middle_blocks, "mask_width": mask_width,
                  "mask_blocks": mask_blocks}
        for name, (low, high) in limits.items():
            if not isinstance(values[name], int) or not low <= values[name] <= high:
                raise ValueError(f"{name} must be an integer from {low} to {high}, "
                                 f"got {values[name]!r}")
        if not enc_blocks or len(enc_blocks) > 6 or any(not 0 <= b <= 64 for b in enc_blocks):
            raise ValueError(f"enc_blocks must be 1-6 levels of 0-64 blocks, got {enc_blocks}")
        self.hparams = {"width": width, "enc_blocks": list(enc_blocks),
                        "middle_blocks": middle_blocks, "dec_blocks": list(dec_blocks),
                        "mask_width": mask_width, "mask_blocks": mask_blocks,
                        "global_branch": global_branch}
        if not (isinstance(sharpen_deadzone, (int, float)) and 0 <= sharpen_deadzone <= 10):
            raise ValueError(f"sharpen_deadzone must be a number from 0 to 10, got "
                             f"{sharpen_deadzone!r}")
        if sharpen_branch:  # recorded only when on: checkpoints without it keep their hparams
            self.hparams["sharpen_branch"] = True
            if sharpen_deadzone:
                self.hparams["sharpen_deadzone"] = float(sharpen_deadzone)
        self.deadzone = float(sharpen_deadzone)
        self.finder = None
        if mask_width:
            self.finder = NAFUNet(1, mask_width, (mask_blocks,) * 3, 1, (mask_blocks,) * 3)
            self.mask_head = nn.Conv2d(mask_width, 1, 3, padding=1)
        self.body = NAFUNet(2 if mask_width else 1, width, enc_blocks, middle_blocks, dec_blocks)
        self.ending = nn.Conv2d(width, 1, 3, padding=1)
        nn.init.zeros_(self.ending.weight)
        nn.init.zeros_(self.ending.bias)
        self.gain = None
        if global_branch:
            self.gain = nn.Linear(self.body.bottleneck_channels, 2)
            nn.init.zeros_(self.gain.weight)
            nn.init.zeros_(self.gain.bias)
        self.sharpen = None
        if sharpen_branch:
            stats = 2 * len(self.SHARPEN_SIGMAS) - 1   # detail energies and their ratios
            self.sharpen = nn.Linear(self.body.bottleneck_channels + stats, len(self.SHARPEN_SIGMAS))
            nn.init.zeros_(self.sharpen.weight)
            nn.init.zeros_(self.sharpen.bias)
        self.multiple = 2 ** max(self.body.levels, 3 if mask_width else 0)

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = -h % self.multiple, -w % self.multiple
        if ph == 0 and pw == 0:
            return x
        mode = "reflect" if ph < h and pw < w else "replicate"
        return F.pad(x, (0, pw, 0, ph), mode=mode)

    def _sharpened(self, y: torch.Tensor, x: torch.Tensor, bottom: torch.Tensor) -> torch.Tensor:
        """``y`` plus, per sigma, amount_sigma * (y - G_sigma(y)), the amounts judged from the
        input ``x`` (its detail energies at each sigma, and their ratios) and the pooled
        bottleneck."""
        energy = torch.stack([(x - _gaussian_blur(x, sigma)).abs().mean((1, 2, 3))
                              for sigma in self.SHARPEN_SIGMAS], 1).clamp_min(1e-4).log()
        ratios = energy[:, 1:] - energy[:, :-1]                    # blur lowers fine detail most
        pooled = torch.cat([bottom.mean((2, 3)), energy, ratios], 1)
        amounts = self.SHARPEN_SCALE * self.sharpen(pooled)       # (B, len(SHARPEN_SIGMAS))
        if self.deadzone:   # (no dead zone keeps the gradient at zero, where training starts)
            amounts = amounts - amounts.clamp(-self.deadzone, self.deadzone)
        return y + sum(a[:, None, None, None] * (y - _gaussian_blur(y, sigma))
                       for a, sigma in zip(amounts.unbind(1), self.SHARPEN_SIGMAS))

    def forward(self, x_damaged: torch.Tensor, with_mask: bool = False,
                mask: torch.Tensor | None = None):
        """Restore ``(B, 1, H, W)`` in [-1, 1]; with ``with_mask`` also the damage logits.

        ``mask`` (same shape, 1 or True = damaged) replaces the finder's guess: a mask drawn by
        hand, or the true mask of synthetic damage to measure what finding costs
        (``benchmarks/headroom.py``). The returned logits are then the finder's own guess.
        """
        if x_damaged.ndim != 4 or x_damaged.shape[1] != 1:
            raise ValueError(f"x_damaged must have shape (B, 1, H, W) (grayscale batch), got "
                             f"{tuple(x_damaged.shape)}; add a batch axis with x.unsqueeze(0)")
        if mask is not None and (self.finder is None or mask.shape != x_damaged.shape):
            raise ValueError("mask must have the shape of x_damaged, " + (
                f"got {tuple(mask.shape)} for {tuple(x_damaged.shape)}" if self.finder is not None
                else "and this network has no mask branch (mask_width 0) to take it"))
        h, w = x_damaged.shape[-2:]
        x = self._pad(x_damaged)
        inputs, logits = x, None
        if self.finder is not None:
            logits = self.mask_head(self.finder(x)[0])             # (B, 1, H', W')
            found = torch.sigmoid(logits) if mask is None else self._pad(mask.to(x.dtype))
            inputs = torch.cat([x, found], dim=1)                  # (B, 2, H', W')
        features, bottom = self.body(inputs)
        base = x
        if self.gain is not None:
            log_gain, offset = self.gain(bottom.mean((2, 3))).unsqueeze(-1).unsqueeze(-1).unbind(1)
            mean = x.mean((2, 3), keepdim=True)                    # (B, 1, 1, 1)
            # x + (gain - 1)(x - mean) + offset: exactly x while the branch is still zero
            base = x + (x - mean) * torch.expm1(log_gain[:, None]) + offset[:, None]
        x_restored = base + self.ending(features)
        if self.sharpen is not None:
            x_restored = self._sharpened(x_restored, x, bottom)
        x_restored = x_restored[..., :h, :w]
        if not self.training:
            x_restored = x_restored.clamp(-1, 1)
        if with_mask:
            return x_restored, None if logits is None else logits[..., :h, :w]
        return x_restored
