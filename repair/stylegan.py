"""A StyleGAN2 generator and discriminator in plain PyTorch, with a filter-wise (W++) style switch.

Written from the StyleGAN2 paper (Karras et al., CVPR 2020) and the robust-inversion paper
(Poirier-Ginter & Lalonde, CVPR 2023); no custom CUDA ops, nothing compiled, CPU first.

Styles come in three shapes, the three latent spaces of the inversion in :mod:`repair.inversion`:

* W   ``(B, w_dim)``: one latent broadcast to every style input;
* W+  ``(B, N_L, w_dim)``: one latent per style input (``N_L = net_G.num_ws``);
* W++ ``(B, N_L, C, w_dim)`` with ``C = net_G.max_channels``: "filter-wise" styles, one latent per
  output filter of every layer. Output filter ``o`` of layer ``l`` modulates the input channels
  with its own style ``A_l(w[l, o])``; demodulation stays per output filter. Layers with fewer
  output filters read only the first ``C_out`` latents.

The parameters follow NVIDIA's stylegan2-ada-pytorch conventions (equalised learning rate, affine
bias 1, ``[1, 3, 3, 1]`` up-sampling filter, sqrt(2)-gain leaky ReLU), so
:func:`repair.stylegan_io.convert_nvidia_pickle` can copy published weights one tensor to one
tensor. Saving and loading (our files, training checkpoints, NVIDIA pickles) is in
:mod:`repair.stylegan_io`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "EqualLinear", "EqualConv2d", "MappingNetwork", "ModulatedConv2d", "StyledConv", "ToImage",
    "StyleGAN2Generator", "StyleGAN2Discriminator", "DiscriminatorBlock", "GENERATOR_KIND",
    "fir_filter", "fir_upsample", "to_gray",
]

LRELU_GAIN = math.sqrt(2.0)
GENERATOR_KIND = "repair.StyleGAN2Generator"
"""The ``kind`` field of a generator file (:func:`repair.stylegan_io.save_stylegan`)."""


def to_gray(x: torch.Tensor) -> torch.Tensor:
    """RGB ``(B, 3, H, W)`` to gray ``(B, 1, H, W)`` with ITU-R 601 luma weights (keeps [-1, 1])."""
    if x.shape[-3] == 1:
        return x
    weights = x.new_tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
    return (x * weights).sum(dim=-3, keepdim=True)


def _lrelu(x: torch.Tensor, clamp: float | None = None) -> torch.Tensor:
    x = F.leaky_relu(x, 0.2) * LRELU_GAIN
    return x.clamp(-clamp, clamp) if clamp is not None else x


def fir_filter() -> torch.Tensor:
    """The ``[1, 3, 3, 1]`` low-pass filter of StyleGAN2's up-sampling, ``(4, 4)``, summing to 1."""
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
    return torch.outer(taps, taps) / taps.sum() ** 2  # (4, 4), sums to 1


def fir_upsample(x: torch.Tensor, kernel: torch.Tensor, crop: int) -> torch.Tensor:
    """Zero-insertion x2 up-sampling + [1,3,3,1] low-pass (gain 4), per channel.

    With ``crop=0`` the output is ``(2H+2, 2W+2)`` (the padding a following 3x3 valid conv needs);
    with ``crop=1`` it is ``(2H, 2W)``.
    """
    channels = x.shape[1]
    weight = (kernel * 4).to(x).expand(channels, 1, 4, 4)
    y = F.conv_transpose2d(x, weight, stride=2, groups=channels)  # (B, C, 2H+2, 2W+2)
    return y[..., crop:y.shape[-2] - crop, crop:y.shape[-1] - crop] if crop else y


class EqualLinear(nn.Module):
    """Fully connected layer with equalised learning rate (weights scaled at run time)."""

    def __init__(self, in_features: int, out_features: int, bias_init: float = 0.0,
                 lr_mul: float = 1.0, activation: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init) / lr_mul))
        self.weight_gain = lr_mul / math.sqrt(in_features)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_features)`` -> ``(B, out_features)``, activated if asked."""
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.lr_mul)
        return _lrelu(x) if self.activation else x


class EqualConv2d(nn.Module):
    """Convolution with equalised learning rate (for the discriminator)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size ** 2)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, H, W)`` -> ``(B, C_out, H, W)``, activated if asked."""
        padding = self.weight.shape[-1] // 2
        x = F.conv2d(x, self.weight * self.weight_gain, self.bias, padding=padding)
        return _lrelu(x) if self.activation else x


class MappingNetwork(nn.Module):
    """z -> w: 2nd-moment normalisation, then leaky-ReLU layers at lr x0.01; tracks mean w."""

    def __init__(self, z_dim: int = 512, w_dim: int = 512, num_layers: int = 8,
                 lr_mul: float = 0.01, w_avg_beta: float = 0.995):
        super().__init__()
        dims = [z_dim] + [w_dim] * num_layers
        self.layers = nn.ModuleList(EqualLinear(a, b, lr_mul=lr_mul, activation=True)
                                    for a, b in zip(dims[:-1], dims[1:]))
        self.register_buffer("w_avg", torch.zeros(w_dim))
        self.w_avg_beta = w_avg_beta

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0,
                update_w_avg: bool = False) -> torch.Tensor:
        """Map ``z`` ``(B, z_dim)`` to ``w`` ``(B, w_dim)``; ``update_w_avg`` during training."""
        x = z * (z.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()
        for layer in self.layers:
            x = layer(x)
        if update_w_avg:
            self.w_avg.copy_(x.detach().mean(0).lerp(self.w_avg, self.w_avg_beta))
        if truncation_psi != 1:
            x = self.w_avg.lerp(x, truncation_psi)
        return x


class ModulatedConv2d(nn.Module):
    """Convolution whose input channels are scaled per sample (and per output filter in W++).

    ``forward(x, styles)``: ``styles`` ``(B, C_in)`` modulates layer-wise (fast path: scale, shared
    conv, rescale); ``(B, C_out, C_in)`` gives every output filter its own modulation (one grouped
    conv with per-sample weights). With ``up=True`` the input is first up-sampled x2 with the
    [1,3,3,1] filter and the (spatially flipped) kernel is applied as a true convolution, NVIDIA's
    convention for its up-sampling layers.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 up: bool = False, demodulate: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.register_buffer("resample_filter", fir_filter())
        self.up, self.demodulate = up, demodulate
        self.padding = 0 if up else kernel_size // 2

    def forward(self, x: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
        """Modulated (and demodulated) convolution of ``x`` ``(B, I, H, W)``, styles per sample."""
        weight = self.weight.flip([2, 3]) if self.up else self.weight  # (O, I, k, k)
        if self.up:
            x = fir_upsample(x, self.resample_filter, crop=0)  # (B, I, 2H+2, 2W+2)
        if styles.dim() == 2:  # layer-wise
            if self.demodulate:
                power = styles.square() @ weight.square().sum(dim=[2, 3]).t()  # (B, O)
                dcoefs = (power + 1e-8).rsqrt()
            x = F.conv2d(x * styles[:, :, None, None], weight, padding=self.padding)
            return x * dcoefs[:, :, None, None] if self.demodulate else x
        batch, out_channels = styles.shape[:2]  # filter-wise: (B, O, I)
        w = weight[None] * styles[:, :, :, None, None]  # (B, O, I, k, k)
        if self.demodulate:
            w = w * (w.square().sum(dim=[2, 3, 4], keepdim=True) + 1e-8).rsqrt()
        x = F.conv2d(x.reshape(1, -1, *x.shape[2:]), w.reshape(-1, *w.shape[2:]),
                     padding=self.padding, groups=batch)
        return x.reshape(batch, out_channels, *x.shape[2:])


def _styles_for(affine: EqualLinear, w: torch.Tensor, out_channels: int) -> torch.Tensor:
    """Styles of one layer: (B, w_dim) -> (B, I); filter-wise (B, C, w_dim) -> (B, O, I)."""
    return affine(w if w.dim() == 2 else w[:, :out_channels])


class StyledConv(nn.Module):
    """Affine style + modulated conv + fixed/random noise + bias + leaky ReLU (one style input)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int,
                 up: bool = False, conv_clamp: float | None = None):
        super().__init__()
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, up=up)
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.out_channels, self.resolution, self.conv_clamp = out_channels, resolution, conv_clamp

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        """Convolution with the styles of ``w``, noise, bias and activation: ``(B, O, R, R)``."""
        x = self.conv(x, _styles_for(self.affine, w, self.out_channels))  # (B, O, R, R)
        if noise_mode == "random":
            x = x + torch.randn(x.shape[0], 1, self.resolution, self.resolution,
                                device=x.device, dtype=x.dtype) * self.noise_strength
        elif noise_mode == "const":
            x = x + self.noise_const * self.noise_strength
        elif noise_mode != "none":
            raise ValueError(f"noise_mode must be 'const', 'random' or 'none', got {noise_mode!r}")
        return _lrelu(x + self.bias[:, None, None], self.conv_clamp)


class ToImage(nn.Module):
    """Modulated 1x1 conv to ``channels`` (1 gray or 3 RGB), no demodulation (the skip outputs)."""

    def __init__(self, in_channels: int, channels: int, w_dim: int,
                 conv_clamp: float | None = None):
        super().__init__()
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.conv = ModulatedConv2d(in_channels, channels, 1, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(channels))
        self.style_gain = 1 / math.sqrt(in_channels)
        self.channels, self.conv_clamp = channels, conv_clamp

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """The image contribution at this resolution: ``(B, channels, R, R)``."""
        styles = _styles_for(self.affine, w, self.channels) * self.style_gain
        x = self.conv(x, styles) + self.bias[:, None, None]
        return x.clamp(-self.conv_clamp, self.conv_clamp) if self.conv_clamp is not None else x


class StyleGAN2Generator(nn.Module):
    """StyleGAN2 generator (skip outputs), any power-of-two ``resolution`` >= 4.

    Args:
        resolution: output side in pixels (4, 8, ..., 1024).
        channels: 1 (grayscale) or 3 (RGB) output channels.
        z_dim, w_dim: latent sizes; mapping_layers: depth of the mapping network.
        channel_base, channel_max: feature maps at resolution r are ``min(channel_base // r,
            channel_max)`` (NVIDIA's FFHQ-1024: 32768 and 512; FFHQ-256: 16384 and 512).
        conv_clamp: clamp activations to +-this (NVIDIA's mixed-precision models use 256).
    """

    def __init__(self, resolution: int = 64, channels: int = 1, z_dim: int = 128, w_dim: int = 128,
                 mapping_layers: int = 4, channel_base: int = 4096, channel_max: int = 128,
                 conv_clamp: float | None = None):
        super().__init__()
        log2 = math.log2(resolution) if resolution > 0 else 0
        if resolution < 4 or log2 != int(log2):
            raise ValueError(f"resolution must be a power of two >= 4, got {resolution}")
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 (gray) or 3 (RGB), got {channels}")
        self.config = dict(resolution=resolution, channels=channels, z_dim=z_dim, w_dim=w_dim,
                           mapping_layers=mapping_layers, channel_base=channel_base,
                           channel_max=channel_max, conv_clamp=conv_clamp)
        self.resolution, self.channels, self.z_dim, self.w_dim = resolution, channels, z_dim, w_dim
        resolutions = [2 ** i for i in range(2, int(log2) + 1)]
        width = {r: min(channel_base // r, channel_max) for r in resolutions}
        self.mapping = MappingNetwork(z_dim, w_dim, mapping_layers)
        self.const = nn.Parameter(torch.randn(width[4], 4, 4))
        convs, to_images = [], []
        for r in resolutions:
            if r > 4:
                convs.append(StyledConv(width[r // 2], width[r], w_dim, r, up=True,
                                        conv_clamp=conv_clamp))
            convs.append(StyledConv(width[r], width[r], w_dim, r, conv_clamp=conv_clamp))
            to_images.append(ToImage(width[r], channels, w_dim, conv_clamp=conv_clamp))
        self.convs = nn.ModuleList(convs)
        self.to_images = nn.ModuleList(to_images)
        self.register_buffer("resample_filter", fir_filter())
        self.num_ws = len(convs) + 1  # N_L: the last ToImage has a style input of its own
        self.max_channels = max(width.values())

    def mean_latent(self, n: int = 4096, seed: int = 0) -> torch.Tensor:
        """Mean of ``n`` mapped latents ``(1, w_dim)`` (``mapping.w_avg`` is the tracked one)."""
        generator = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.z_dim, generator=generator).to(self.const.device)
        with torch.no_grad():
            return self.mapping(z).mean(0, keepdim=True)

    def broadcast(self, ws: torch.Tensor) -> torch.Tensor:
        """W ``(B, w_dim)`` -> W+ ``(B, N_L, w_dim)``; W+ and W++ pass through (shapes checked)."""
        if ws.dim() == 2:
            ws = ws[:, None].expand(-1, self.num_ws, -1)
        ok = ws.dim() in (3, 4) and ws.shape[1] == self.num_ws and ws.shape[-1] == self.w_dim
        if ws.dim() == 4:
            ok = ok and ws.shape[2] == self.max_channels
        if not ok:
            raise ValueError(
                f"styles must be (B, {self.w_dim}), (B, {self.num_ws}, {self.w_dim}) or "
                f"(B, {self.num_ws}, {self.max_channels}, {self.w_dim}); got {tuple(ws.shape)}")
        return ws

    def synthesis(self, ws: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        """Image ``(B, channels, R, R)`` (about [-1, 1], not clamped) from W, W+ or W++ styles."""
        ws = self.broadcast(ws)
        x = self.const[None].expand(ws.shape[0], -1, -1, -1)  # (B, C4, 4, 4)
        x = self.convs[0](x, ws[:, 0], noise_mode)
        img = self.to_images[0](x, ws[:, 1])  # (B, channels, 4, 4)
        for i, to_image in enumerate(self.to_images[1:]):
            x = self.convs[2 * i + 1](x, ws[:, 2 * i + 1], noise_mode)
            x = self.convs[2 * i + 2](x, ws[:, 2 * i + 2], noise_mode)
            img = fir_upsample(img, self.resample_filter, crop=1) + to_image(x, ws[:, 2 * i + 3])
        return img

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0,
                noise_mode: str = "random") -> torch.Tensor:
        """Sample: ``z`` ``(B, z_dim)`` -> image ``(B, channels, R, R)``."""
        return self.synthesis(self.mapping(z, truncation_psi), noise_mode)


class DiscriminatorBlock(nn.Module):
    """Residual block: two 3x3 convs then 2x average-pool down, plus a 1x1 skip; sum / sqrt(2)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv0 = EqualConv2d(in_channels, in_channels, 3)
        self.conv1 = EqualConv2d(in_channels, out_channels, 3)
        self.skip = EqualConv2d(in_channels, out_channels, 1, bias=False, activation=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, H, W)`` -> ``(B, C_out, H/2, W/2)``."""
        y = F.avg_pool2d(self.conv1(self.conv0(x)), 2)
        return (y + self.skip(F.avg_pool2d(x, 2))) / math.sqrt(2)


class StyleGAN2Discriminator(nn.Module):
    """Small residual discriminator with a minibatch-stddev feature; one logit per image."""

    def __init__(self, resolution: int = 64, channels: int = 1, channel_base: int = 4096,
                 channel_max: int = 128, mbstd_group: int = 4):
        super().__init__()
        log2 = int(math.log2(resolution))
        width = {2 ** i: min(channel_base // 2 ** i, channel_max) for i in range(2, log2 + 1)}
        self.from_image = EqualConv2d(channels, width[resolution], 1)
        self.blocks = nn.Sequential(*(DiscriminatorBlock(width[2 ** i], width[2 ** (i - 1)])
                                      for i in range(log2, 2, -1)))
        self.conv = EqualConv2d(width[4] + 1, width[4], 3)
        self.fc = EqualLinear(width[4] * 16, width[4], activation=True)
        self.out = EqualLinear(width[4], 1)
        self.mbstd_group = mbstd_group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B,)`` for images ``(B, channels, R, R)``."""
        x = self.blocks(self.from_image(x))  # (B, C4, 4, 4)
        group = min(self.mbstd_group, x.shape[0])
        while x.shape[0] % group:
            group -= 1
        y = x.reshape(group, -1, *x.shape[1:])  # (G, B/G, C, 4, 4)
        y = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=[1, 2, 3])  # (B/G,)
        y = y.repeat(group)[:, None, None, None].expand(-1, 1, 4, 4)
        x = self.conv(torch.cat([x, y], dim=1))
        return self.out(self.fc(x.flatten(1)))[:, 0]
