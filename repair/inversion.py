"""Robust unsupervised StyleGAN inversion (Poirier-Ginter & Lalonde, CVPR 2023), CPU-friendly.

Restore a damaged photo ``y`` by searching the latent space of a frozen generator for an image
``G(w)`` whose *degraded* version ``f_hat(G(w))`` matches ``y``; ``G(w)`` is then the restoration.
Three phases, each starting where the last one stopped:

====  =====================================================  ==================  =====
phase variable                                               start               lr
====  =====================================================  ==================  =====
W     one latent broadcast to every style input              the mean latent     0.08
W+    one latent per style input ``(N_L, w_dim)``            W repeated          0.02
W++   one latent per output filter ``(N_L, C, w_dim)``       W+ repeated         0.005
====  =====================================================  ==================  =====

The optimiser is normalised gradient descent: every latent *vector* moves exactly ``lr`` along
its unit gradient per step (no momentum, no regulariser, noise fixed). The loss compares images
over an average-pooled pyramid (see :class:`RobustLoss`). Written from the paper's description.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from repair import damage as _damage
from repair.metrics import lpips_available
from repair.stylegan import StyleGAN2Generator, to_gray

__all__ = ["Degradation", "RobustLoss", "InversionResult", "invert", "normalized_step",
           "differentiable_ssim", "PHASES", "DEFAULT_GENERATOR", "resolve_generator"]

PHASES = ("W", "W+", "W++")


class Degradation(nn.Module):
    """Differentiable degradation ``f_hat`` for the loss: to-gray, blur, contrast, down-sampling.

    The inpainting mask is not applied here but by the loss (same random fill in both images).

    Args:
        blur: strength in ``[0, 1]`` as in :func:`repair.damage.gaussian_blur` (sigma ``3 *
            blur`` px, same kernel); 0 = none.
        contrast: strength in ``[0, 1]`` as in :func:`repair.damage.lower_contrast`; 0 = none.
        mask: bool ``(B, 1, h, w)``, ``(1, h, w)`` or ``(h, w)``, True where the photo is missing
            (splotches, cracks), at the degraded resolution; None = nothing missing.
        downsample: integer factor of average pooling (1 = none).
        to_gray: turn an RGB generator's output into gray first (for grayscale photos).
    """

    def __init__(self, blur: float = 0.0, contrast: float = 0.0,
                 mask: torch.Tensor | None = None, downsample: int = 1, to_gray: bool = False):
        super().__init__()
        self.blur = _damage.check_strength(blur, "blur")
        self.contrast = _damage.check_strength(contrast, "contrast")
        if int(downsample) != downsample or downsample < 1:
            raise ValueError(f"downsample must be a positive integer factor, got {downsample}")
        self.downsample, self.to_gray = int(downsample), bool(to_gray)
        if mask is not None:
            mask = torch.as_tensor(mask).bool()
            mask = mask.reshape((1,) * (4 - mask.dim()) + tuple(mask.shape))  # (B, 1, h, w)
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` -> degraded ``(B, C', H / downsample, W / downsample)``."""
        if self.to_gray:
            x = to_gray(x)
        batch, channels = x.shape[:2]
        planes = x.reshape(batch * channels, 1, *x.shape[2:])  # damage works on gray planes
        if self.blur > 0:
            planes = _damage.gaussian_blur(planes, self.blur)
        if self.contrast > 0:
            planes = _damage.lower_contrast(planes, self.contrast)
        x = planes.reshape(batch, channels, *planes.shape[2:])
        if self.downsample > 1:
            x = F.avg_pool2d(x, self.downsample)
        return x

    def extra_repr(self) -> str:
        """The settings, as ``print(module)`` shows them."""
        mask = None if self.mask is None else tuple(self.mask.shape)
        return (f"blur={self.blur}, contrast={self.contrast}, downsample={self.downsample}, "
                f"to_gray={self.to_gray}, mask={mask}")


def _gaussian_window(size: int, sigma: float, like: torch.Tensor) -> torch.Tensor:
    coords = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2
    g = torch.exp(-coords ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    return torch.outer(g, g)[None, None]  # (1, 1, size, size)


def differentiable_ssim(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5
                        ) -> torch.Tensor:
    """Mean SSIM per image ``(B,)`` of ``x``, ``y`` ``(B, C, H, W)`` in [-1, 1], differentiable
    (a term of :class:`RobustLoss`; the score of record is :func:`repair.metrics.ssim`)."""
    x, y = (x + 1) / 2, (y + 1) / 2
    size = min(window, *x.shape[-2:])
    size -= 1 - size % 2
    channels = x.shape[1]
    kernel = _gaussian_window(size, sigma, x).expand(channels, 1, size, size)
    blur = partial(F.conv2d, weight=kernel, groups=channels)
    mu_x, mu_y = blur(x), blur(y)
    var_x, var_y = blur(x * x) - mu_x ** 2, blur(y * y) - mu_y ** 2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    value = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) *
                                                         (var_x + var_y + c2))
    return value.mean(dim=[1, 2, 3])


class RobustLoss(nn.Module):
    """The paper's loss: a perceptual distance summed over an average-pooled image pyramid
    (levels larger than ``min_side`` px, at most ``max_levels``, weight 1 each) plus
    ``l1_weight`` x mean |x - y| at the first level of side <= ``min_side``.

    Args:
        distance: ``"lpips"`` (LPIPS-VGG, the paper's; needs the ``lpips`` package and weights on
            disk), ``"ms-l1-ssim"`` (offline substitute: mean |x - y| + (1 - SSIM) per level) or
            ``"auto"`` (LPIPS when available, else the substitute). ``self.name`` says which.
    """

    def __init__(self, distance: str = "auto", max_levels: int = 6, min_side: int = 16,
                 l1_weight: float = 0.1):
        super().__init__()
        if distance not in ("auto", "lpips", "ms-l1-ssim"):
            raise ValueError(f"distance must be 'auto', 'lpips' or 'ms-l1-ssim', got {distance!r}")
        if distance == "lpips" and not lpips_available("vgg"):
            raise FileNotFoundError("LPIPS needs `pip install lpips` and its VGG weights in the "
                                    "torch hub cache; use distance='ms-l1-ssim' offline")
        auto_lpips = distance == "auto" and lpips_available("vgg")
        self.name = "lpips" if distance == "lpips" or auto_lpips else "ms-l1-ssim"
        self.lpips = None
        if self.name == "lpips":
            import lpips
            self.lpips = lpips.LPIPS(net="vgg", verbose=False).eval().requires_grad_(False)
        self.max_levels, self.min_side, self.l1_weight = max_levels, min_side, l1_weight

    def distance(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Perceptual distance per image ``(B,)`` at one pyramid level."""
        if self.lpips is not None:
            if x.shape[1] == 1:
                x, y = x.expand(-1, 3, -1, -1), y.expand(-1, 3, -1, -1)
            return self.lpips(x, y).flatten()
        return (x - y).abs().mean(dim=[1, 2, 3]) + (1 - differentiable_ssim(x, y))

    def forward(self, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Loss per image ``(B,)`` between prediction ``x`` and photo ``y`` ``(B, C, h, w)``.

        ``mask`` (bool, True = missing) pixels get the same uniform random fill in both images.
        """
        if mask is not None:
            fill = torch.rand(y.shape, generator=generator).to(y) * 2 - 1
            mask = mask.to(y.device).expand_as(y)
            x, y = torch.where(mask, fill, x), torch.where(mask, fill, y)
        total = x.new_zeros(x.shape[0])
        levels = 0
        while min(x.shape[-2:]) > self.min_side:
            if levels < self.max_levels:
                total = total + self.distance(x, y)
                levels += 1
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
        return total + self.l1_weight * (x - y).abs().mean(dim=[1, 2, 3])


def normalized_step(latent: torch.Tensor, grad: torch.Tensor, lr: float) -> None:
    """In place: every vector (last dim) of ``latent`` moves exactly ``lr`` against its gradient.

    A zero gradient (a filter the layer does not have) gives NaN after normalising; it becomes 0.
    """
    with torch.no_grad():
        direction = torch.nan_to_num(grad / grad.norm(dim=-1, keepdim=True), nan=0.0,
                                     posinf=0.0, neginf=0.0)
        latent.sub_(lr * direction)


@dataclass
class InversionResult:
    """What :func:`invert` found.

    ``restorations[i]``: ``G(latent)`` after phase ``i`` ``(B, C_G, R, R)``, clamped to [-1, 1];
    ``latents[i]``: W ``(B, w_dim)``, W+ ``(B, N_L, w_dim)``, W++ ``(B, N_L, C, w_dim)``;
    ``losses[i]``: summed loss per step; ``loss_name``: which perceptual distance was used.
    """

    restorations: list[torch.Tensor] = field(default_factory=list)
    latents: list[torch.Tensor] = field(default_factory=list)
    losses: list[list[float]] = field(default_factory=list)
    loss_name: str = ""
    phases: tuple[str, ...] = PHASES

    @property
    def restored(self) -> torch.Tensor:
        """The final restoration (after the last phase)."""
        return self.restorations[-1]


def _initial_latent(net_G: StyleGAN2Generator, batch: int, device) -> torch.Tensor:
    w_avg = net_G.mapping.w_avg
    mean = w_avg[None] if float(w_avg.norm()) > 0 else net_G.mean_latent(2048)
    return mean.to(device).expand(batch, -1).clone()  # (B, w_dim)


def _grow(latent: torch.Tensor, phase: str, net_G: StyleGAN2Generator) -> torch.Tensor:
    """W -> W+ (repeat per style input) -> W++ (repeat per output filter)."""
    if phase == "W+":
        return latent[:, None].repeat(1, net_G.num_ws, 1)
    if phase == "W++":
        return latent[:, :, None].repeat(1, 1, net_G.max_channels, 1)
    return latent


def invert(net_G: StyleGAN2Generator, target: torch.Tensor,
           degradation: Degradation | None = None, phases: tuple[int, int, int] = (150, 150, 150),
           lrs: tuple[float, float, float] = (0.08, 0.02, 0.005), loss: str | RobustLoss = "auto",
           progress: bool = True, device: str | torch.device | None = None,
           seed: int = 0, callback: Callable[[str, int, float], None] | None = None
           ) -> InversionResult:
    """Restore ``target`` by inverting the frozen ``net_G`` through ``degradation`` (W, W+, W++).

    Args:
        net_G: a :class:`repair.stylegan.StyleGAN2Generator` (1 or 3 channels); not changed.
        target: the damaged photo(s) ``(B, C, h, w)`` or ``(C, h, w)`` in ``[-1, 1]``, with
            ``h = w = net_G.resolution // degradation.downsample``. A gray target and an RGB
            generator get a to-gray step added automatically.
        degradation: the known damage ``f_hat`` (None = identity: plain projection).
        phases: steps in the W, W+ and W++ phases (0 skips a phase).
        lrs: the three step sizes (distance each latent vector moves per step).
        loss: ``"auto"``, ``"lpips"``, ``"ms-l1-ssim"`` or a :class:`RobustLoss`.
        progress: show a progress bar.
        device: where to compute (default: the generator's device).
        seed: seeds the random fill of masked pixels.
        callback: called after every step as ``callback(phase, step, loss)`` (e.g. to plot).

    Returns:
        :class:`InversionResult` with one restoration and one latent per phase.
    """
    if len(phases) != 3 or len(lrs) != 3:
        raise ValueError("phases and lrs need three values each: (W, W+, W++)")
    device = torch.device(device) if device is not None else net_G.const.device
    net_G = net_G.to(device)
    degradation = copy.deepcopy(degradation) if degradation is not None else Degradation()
    target = _checked_target(net_G, target, degradation, device)
    degradation = degradation.to(device)
    criterion = (loss if isinstance(loss, RobustLoss) else RobustLoss(loss)).to(device)
    generator = torch.Generator().manual_seed(seed)
    result = InversionResult(loss_name=criterion.name)
    latent = _initial_latent(net_G, target.shape[0], device)
    trainable = [p.requires_grad for p in net_G.parameters()]
    net_G.requires_grad_(False)  # frozen; restored below
    try:
        _run_phases(net_G, target, degradation, criterion, degradation.mask, generator, latent,
                    phases, lrs, progress, callback, result)
    finally:
        for p, flag in zip(net_G.parameters(), trainable):
            p.requires_grad_(flag)
    return result


def _checked_target(net_G: StyleGAN2Generator, target: torch.Tensor, degradation: Degradation,
                    device: torch.device) -> torch.Tensor:
    """``target`` as ``(B, C, side, side)`` on ``device``, or a ValueError that says what to fix.

    Sets ``degradation.to_gray`` for a gray target and an RGB generator.
    """
    target = target[None] if target.dim() == 3 else target
    if target.dim() != 4:
        raise ValueError(f"target must be (C, h, w) or (B, C, h, w), got {tuple(target.shape)}")
    target = target.to(device=device, dtype=torch.float32)
    if target.shape[1] == 1 and net_G.channels == 3:
        degradation.to_gray = True
    elif target.shape[1] != (1 if degradation.to_gray else net_G.channels):
        raise ValueError(f"target has {target.shape[1]} channels but the generator makes "
                         f"{net_G.channels}; convert the photo to gray (1 channel)")
    side = net_G.resolution // degradation.downsample
    if tuple(target.shape[-2:]) != (side, side):
        raise ValueError(f"target is {tuple(target.shape[-2:])} but this generator and "
                         f"down-sampling x{degradation.downsample} need ({side}, {side}); "
                         "crop/resize the photo first")
    mask = degradation.mask
    if mask is not None and (tuple(mask.shape[-2:]) != (side, side) or
                             mask.shape[0] not in (1, target.shape[0])):
        raise ValueError(f"mask is {tuple(mask.shape)}, target is {tuple(target.shape)}: give "
                         "one mask per photo (or one for all) at the photo's size")
    return target


def _run_phases(net_G, target, degradation, criterion, mask, generator, latent, phases, lrs,
                progress, callback, result) -> None:
    from tqdm.auto import tqdm

    bar = tqdm(total=sum(phases), disable=not progress, desc="inversion")
    for phase, steps, lr in zip(PHASES, phases, lrs):
        latent = _grow(latent, phase, net_G).detach().requires_grad_(True)
        history = []
        for step in range(steps):
            prediction = degradation(net_G.synthesis(latent, noise_mode="const"))
            value = criterion(prediction, target, mask, generator).sum()
            grad, = torch.autograd.grad(value, latent)
            normalized_step(latent, grad, lr)
            history.append(value.item())
            if callback is not None:
                callback(phase, step, history[-1])
            bar.set_postfix(phase=phase, loss=f"{value.item():.4f}")
            bar.update(1)
        with torch.no_grad():
            result.restorations.append(net_G.synthesis(latent, noise_mode="const").clamp(-1, 1))
        result.latents.append(latent.detach().clone())
        result.losses.append(history)
    bar.close()


# ---------------------------------------------------------------- generators by name

DEFAULT_GENERATOR = "stylegan-faces64"
"""The committed generator: ``checkpoints/stylegan-faces64.pt``, 64x64 gray faces, CPU-trained."""


def resolve_generator(name_or_path: str = DEFAULT_GENERATOR, device: str | torch.device = "cpu",
                      progress: bool = True) -> StyleGAN2Generator:
    """A frozen generator from a file path or a name that
    :func:`repair.named_weights.weights_path` resolves (committed, or downloaded once into the
    cache with its SHA-256 checked, then converted).

    Args:
        name_or_path: ``stylegan-faces64`` (default), ``ffhq-res256``, ... or a ``.pt``/``.pkl``
            path.
        device: where to put the network.
    """
    from repair.stylegan_io import load_stylegan
    from repair.named_weights import COMMITTED_OTHER, REGISTRY, weights_path

    path = Path(name_or_path).expanduser()
    if path.is_file():
        return load_stylegan(path, device)
    if name_or_path in COMMITTED_OTHER or name_or_path in REGISTRY:
        return load_stylegan(weights_path(name_or_path, progress=progress), device)
    known = list(COMMITTED_OTHER) + list(REGISTRY)
    raise FileNotFoundError(f"{name_or_path}: neither a generator file nor a known name "
                            f"({', '.join(known)}); pass a path written by "
                            "`python -m repair.gantrain --export` or an NVIDIA .pkl")
