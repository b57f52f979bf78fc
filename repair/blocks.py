"""The building blocks of the networks of :mod:`repair.nets`: initialisation, checks, U-Net parts.

- :func:`init_weights`: the DCGAN initialisation every network starts from, N(0, 0.02);
- :func:`check_images`: the clear error for an input that is not a ``(B, 1, H, W)`` batch;
- :func:`norm_layer`, :class:`DoubleConv`, :class:`Up`: the layers the U-Net is built from;
- :func:`bounded_residual`: how the U-Net applies its correction and stays in ``[-1, 1]``.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["init_weights", "check_images", "norm_layer", "DoubleConv", "Up", "bounded_residual"]


def init_weights(net: nn.Module, std: float = 0.02) -> nn.Module:
    """Initialise ``net`` in place the DCGAN way and return it.

    Conv, transposed-conv and linear weights ~ N(0, std), their biases 0 (the paper: "a Normal
    distribution with a mean of 0 and standard deviation of 0.02"). Norm layers with a learnable
    scale get weight ~ N(1, std) and bias 0, the convention of the PyTorch DCGAN tutorial the paper
    followed (a scale of mean 0 would switch the layer off).

    Args:
        net: any module; every submodule is visited.
        std: standard deviation of the normal draws.
    """
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
    return net


def check_images(x: torch.Tensor, name: str) -> None:
    """Raise ``ValueError`` unless ``x`` is a (B, 1, H, W) batch of grayscale images."""
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"{name} must have shape (B, 1, H, W) (grayscale batch), got "
                         f"{tuple(x.shape)}; add a batch axis with x.unsqueeze(0) if needed")


def norm_layer(kind: str, channels: int) -> nn.Module:
    """A normalisation layer: ``"batch"``, ``"instance"`` or ``"none"``."""
    layers = {"batch": nn.BatchNorm2d, "instance": nn.InstanceNorm2d, "none": lambda _: nn.Identity()}
    if kind not in layers:
        raise ValueError(f"norm must be 'batch', 'instance' or 'none', got {kind!r}")
    return layers[kind](channels)


class DoubleConv(nn.Sequential):
    """Two 3x3 convolutions, each followed by a norm layer and ReLU; keeps H and W."""

    def __init__(self, c_in: int, c_out: int, norm: str = "batch"):
        bias = norm == "none"
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=bias), norm_layer(norm, c_out), nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=bias), norm_layer(norm, c_out), nn.ReLU(inplace=True),
        )


class Up(nn.Module):
    """Double the size and halve the channels, concatenate the skip, then a :class:`DoubleConv`.

    ``upsample="bilinear"`` (a 1x1 conv, then bilinear x2) spreads every input pixel evenly and
    leaves no checkerboard; ``"transpose"`` (4x4 transposed conv, stride 2) is the DCGAN way.
    """

    def __init__(self, c_in: int, c_out: int, upsample: str = "bilinear", norm: str = "batch"):
        super().__init__()
        if upsample == "bilinear":
            self.up = nn.Sequential(nn.Conv2d(c_in, c_out, 1),
                                    nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
        elif upsample == "transpose":
            self.up = nn.ConvTranspose2d(c_in, c_out, 4, 2, 1)
        else:
            raise ValueError(f"upsample must be 'bilinear' or 'transpose', got {upsample!r}")
        self.conv = DoubleConv(2 * c_out, c_out, norm)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """``x`` (B, c_in, h, w) and ``skip`` (B, c_out, 2h, 2w) -> (B, c_out, 2h, 2w)."""
        return self.conv(torch.cat([skip, self.up(x)], dim=1))


def bounded_residual(x: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """``x`` moved a fraction ``tanh(delta)`` of the way to white (delta > 0) or black (delta < 0).

    The result stays in [-1, 1], equals ``x`` where ``delta = 0``, and unlike ``clamp(x + delta)``
    keeps a gradient for a saturated pixel (a white splotch can always be pulled down).
    """
    step = torch.tanh(delta)
    room = torch.where(step >= 0, 1 - x, 1 + x)
    return x + room * step
