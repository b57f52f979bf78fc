"""Probes that show what a network does wrong: its loss head and its checkerboard artefacts.

Chapter 02 uses them to prove the paper's flaws with numbers rather than words:

- :func:`softmax_bce_analysis`, :func:`softmax_batch_coupling`, :func:`head_gradient_sweep`: what
  ``BCEWithLogitsLoss`` makes of a softmax output, and how much gradient reaches the generator.
- :func:`checkerboard_map`, :func:`checkerboard_score`: the periodic pattern of strided layers.

The layer tables, receptive field, FLOPs and memory are measured in :mod:`repair.anatomy`.
"""

from __future__ import annotations

import copy
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from repair.anatomy import input_size, is_discriminator, measuring_copy
from repair.nets import REAL, PaperDiscriminator

# Old addresses of the measurements that moved to repair.anatomy, kept for chapter 02:
from repair.anatomy import flops, impulse_response, peak_memory, receptive_field  # noqa: F401

__all__ = [
    "softmax_bce_analysis", "softmax_batch_coupling", "logit_twin", "generator_gradient_norm",
    "head_gradient_sweep", "checkerboard_map", "checkerboard_score", "nyquist_fraction",
]


# ---------------------------------------------------------------- the softmax head under BCE


def softmax_bce_analysis(z_max: float = 10.0, num: int = 401) -> dict:
    """What ``BCEWithLogitsLoss`` sees when fed the paper's softmax probability, measured by autograd.

    The two-unit head gives P(real) = softmax([z_fake, z_real])[1] = sigmoid(z) with
    z = z_real - z_fake. The paper passes that probability to BCE-with-logits, which applies a
    second sigmoid. We sweep z and compare with passing z itself (a logit head).

    Args:
        z_max: the sweep covers z in [-z_max, z_max].
        num: number of points.

    Returns:
        dict of tensors over the sweep (``z``, ``p`` = P(real), ``implied_D`` = sigmoid(p), and the
        generator-side gradients dL/dz for target "real": ``grad_softmax``, ``grad_logit``) and
        scalars: ``implied_D_range``, ``grad_confidently_wrong`` (softmax, logit at z = -z_max),
        ``max_abs_grad_softmax``, ``one_unit`` (loss for "real", "fake" and its gradient when the
        head has a single unit), ``two_column_argmin`` (P(real) minimising the loss for "real" and
        for "fake" when both softmax columns get the same target).
    """
    z = torch.linspace(-z_max, z_max, num, dtype=torch.float64, requires_grad=True)
    logits = torch.stack([torch.zeros_like(z), z], dim=1)           # (num, 2): fake, real
    p = torch.softmax(logits, dim=1)[:, REAL]                       # (num,) P(real)
    ones = torch.ones_like(p)
    loss_softmax = F.binary_cross_entropy_with_logits(p, ones, reduction="sum")
    grad_softmax, = torch.autograd.grad(loss_softmax, z)
    loss_logit = F.binary_cross_entropy_with_logits(z, ones, reduction="sum")
    grad_logit, = torch.autograd.grad(loss_logit, z)

    # a one-unit head: softmax over a single unit is identically 1
    z1 = z.detach()[:, None].clone().requires_grad_(True)           # (num, 1)
    p1 = torch.softmax(z1, dim=1)
    loss_real1 = F.binary_cross_entropy_with_logits(p1, torch.ones_like(p1))
    grad1, = torch.autograd.grad(loss_real1, z1)
    loss_fake1 = F.binary_cross_entropy_with_logits(p1, torch.zeros_like(p1))

    # both columns given one target (targets = ones_like(output)): where is each loss lowest?
    probs = torch.softmax(logits.detach(), dim=1)                   # (num, 2)
    two_real = F.binary_cross_entropy_with_logits(probs, torch.ones_like(probs), reduction="none")
    two_fake = F.binary_cross_entropy_with_logits(probs, torch.zeros_like(probs), reduction="none")

    implied = torch.sigmoid(p.detach())
    return {
        "z": z.detach(), "p": p.detach(), "implied_D": implied,
        "grad_softmax": grad_softmax, "grad_logit": grad_logit,
        "implied_D_range": (implied.min().item(), implied.max().item()),
        "grad_confidently_wrong": (grad_softmax[0].item(), grad_logit[0].item()),
        "max_abs_grad_softmax": grad_softmax.abs().max().item(),
        "one_unit": {"loss_real": loss_real1.item(), "loss_fake": loss_fake1.item(),
                     "grad_abs_max": grad1.abs().max().item()},
        "two_column_argmin": (probs[two_real.mean(1).argmin(), REAL].item(),
                              probs[two_fake.mean(1).argmin(), REAL].item()),
    }


def softmax_batch_coupling(batch_size: int = 4, seed: int = 0) -> dict:
    """Which axis ``nn.Softmax()`` without ``dim`` normalises, and whether it couples samples.

    Returns ``{"implicit_dim_2d": d, "implicit_dim_1d": d, "coupling_2d": c, "coupling_1d": c}``:
    for a ``(B, 2)`` and a flat ``(B,)`` batch, the axis chosen and the largest |d out_i / d in_j|
    between two different samples i != j (0 means the samples do not influence each other).
    """
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape in (("2d", (batch_size, 2)), ("1d", (batch_size,))):
        x = torch.randn(shape, generator=gen, dtype=torch.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)    # "Implicit dimension choice ..."
            implicit = nn.Softmax()                         # the paper's call

            def f(t: torch.Tensor) -> torch.Tensor:
                """The paper's ``nn.Softmax()`` without ``dim``."""
                return implicit(t)

            y = f(x)
            jac = torch.autograd.functional.jacobian(f, x)  # (*shape, *shape)
        dims = [d for d in range(x.ndim) if torch.allclose(y, torch.softmax(x, dim=d))]
        sample = torch.arange(batch_size).repeat_interleave(x.numel() // batch_size)
        jac = jac.reshape(x.numel(), x.numel())              # d out_i / d in_j, flattened
        cross = jac[sample[:, None] != sample[None, :]]      # pairs from different samples
        out[f"implicit_dim_{name}"] = dims[0]
        out[f"coupling_{name}"] = cross.abs().max().item()
    return out


def logit_twin(net_D: PaperDiscriminator) -> PaperDiscriminator:
    """A ``head="logit"`` copy of a softmax-head paper discriminator that makes the same decisions.

    Its logit is z_real - z_fake, so ``sigmoid(twin(x)) == net_D(x)[:, REAL]`` exactly: the two
    differ only in what ``BCEWithLogitsLoss`` is given.
    """
    if not isinstance(net_D, PaperDiscriminator) or net_D.returns_logits:
        raise ValueError("logit_twin needs a PaperDiscriminator with head='softmax'")
    twin = PaperDiscriminator(**{**net_D.hparams, "head": "logit"}).to(
        next(net_D.parameters()).device)
    state = {k: v for k, v in net_D.state_dict().items() if not k.startswith("classifier.4.")}
    last = net_D.classifier[4]                               # Linear(100, 2)
    state["classifier.4.weight"] = (last.weight[REAL] - last.weight[1 - REAL])[None].detach()
    state["classifier.4.bias"] = (last.bias[REAL] - last.bias[1 - REAL])[None].detach()
    twin.load_state_dict(state)
    return twin.train(net_D.training)


def _adversarial_score(net_D: nn.Module, x_damaged: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """What the paper's loss treats as D's logit: the P(real) column of a softmax head, else the logits."""
    out = net_D(x_damaged, x)
    return out[:, REAL] if not getattr(net_D, "returns_logits", True) else out.flatten(1)


def _grad_norm(loss: torch.Tensor, params: list[torch.Tensor], retain_graph: bool = False) -> float:
    grads = torch.autograd.grad(loss, params, retain_graph=retain_graph, allow_unused=True)
    return torch.sqrt(sum((g ** 2).sum() for g in grads if g is not None)).item()


def _adversarial_loss(net_D: nn.Module, x_damaged: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    score = _adversarial_score(net_D, x_damaged, x)
    return F.binary_cross_entropy_with_logits(score, torch.ones_like(score))


def generator_gradient_norm(net_G: nn.Module, net_D: nn.Module, x_damaged: torch.Tensor) -> float:
    """L2 norm of d(adversarial loss)/d(generator parameters), the loss as the paper computes it.

    The loss is ``BCEWithLogitsLoss(score, 1)`` on ``net_D``'s score of ``net_G(x_damaged)``, where
    the score is the P(real) column for a softmax head (the paper's usage) and the logit otherwise.

    Args:
        net_G, net_D: any generator and discriminator of :mod:`repair.nets` (modes are kept).
        x_damaged: (B, 1, H, W) in [-1, 1].
    """
    params = [p for p in net_G.parameters() if p.requires_grad]
    return _grad_norm(_adversarial_loss(net_D, x_damaged, net_G(x_damaged)), params)


def head_gradient_sweep(net_G: nn.Module, net_D: PaperDiscriminator, x_damaged: torch.Tensor,
                        shifts: tuple[float, ...] = (-12, -8, -4, -2, 0, 2, 4)) -> dict:
    """Generator gradient with the softmax head vs its :func:`logit_twin`, as D grows confident.

    For each shift s, a copy of ``net_D`` has s added to its real-vs-fake logit (through the last
    bias), so it judges the generator's output more fake (s < 0) or more real (s > 0). The
    generator runs once; each gradient is that of :func:`generator_gradient_norm`.

    Returns:
        ``{"shift": [...], "D_real": [...] (mean P(real) of the fakes), "softmax": [...],
        "logit": [...]}``: gradient norms on the generator's parameters for each head.
    """
    params = [p for p in net_G.parameters() if p.requires_grad]
    x_fake = net_G(x_damaged)                                # one forward, many backwards
    rows: dict[str, list[float]] = {"shift": [], "D_real": [], "softmax": [], "logit": []}
    for s in shifts:
        net_Ds = copy.deepcopy(net_D)
        with torch.no_grad():
            net_Ds.classifier[4].bias[REAL] += s / 2
            net_Ds.classifier[4].bias[1 - REAL] -= s / 2
        rows["shift"].append(float(s))
        loss = _adversarial_loss(net_Ds, x_damaged, x_fake)
        with torch.no_grad():
            rows["D_real"].append(net_Ds(x_damaged, x_fake)[:, REAL].mean().item())
        rows["softmax"].append(_grad_norm(loss, params, retain_graph=True))
        loss = _adversarial_loss(logit_twin(net_Ds), x_damaged, x_fake)
        rows["logit"].append(_grad_norm(loss, params, retain_graph=True))
    return rows


# ---------------------------------------------------------------- checkerboard artefacts


def checkerboard_map(net: nn.Module, image_size: int | None = None,
                     value: float = 0.5) -> torch.Tensor:
    """What a flat gray image turns into: a generator's output, or a discriminator's input gradient.

    A flat input should give a flat output (or a flat gradient): any periodic pattern away from
    the borders is an artefact of the strided layers. Uses the eval-mode copy of
    :func:`repair.anatomy.measuring_copy`: for a residual generator, its correction ``tanh(delta)``.

    Args:
        net: a generator or discriminator of :mod:`repair.nets`.
        image_size: side of the square input (default: the net's own, else 64).
        value: the gray level in [-1, 1].

    Returns:
        (H, W) tensor.
    """
    size = input_size(net, image_size)
    net = measuring_copy(net, size)
    x = torch.full((1, 1, size, size), float(value), device=next(net.parameters()).device)
    if is_discriminator(net):
        x.requires_grad_(True)
        score = _adversarial_score(net, x.detach(), x)
        grad, = torch.autograd.grad(score.sum(), x)
        return grad[0, 0].detach().cpu()
    with torch.no_grad():
        return net(x)[0, 0].cpu()


def nyquist_fraction(image: torch.Tensor, margin: int = 0) -> float:
    """Share of an image's variation that sits at the Nyquist frequency (a 2-pixel period).

    The power of the 2D DFT on the row and column of frequency 1/2 cycle per pixel, divided by the
    power at all non-zero frequencies, after cropping ``margin`` pixels from each border. A pure
    checkerboard or stripe pattern of period 2 scores 1, white noise about 2/N, a flat image 0.

    Args:
        image: (H, W) tensor with H and W even after cropping.
        margin: pixels cut from each side first (border effects of zero padding).
    """
    img = image.detach().to(torch.float64)
    if margin:
        img = img[margin:-margin, margin:-margin]
    img = img - img.mean()
    scale = image.detach().abs().max().item()
    if img.std().item() <= 1e-6 * scale or scale == 0:
        return 0.0
    power = torch.fft.fft2(img).abs() ** 2
    h, w = power.shape
    nyquist = torch.zeros_like(power, dtype=torch.bool)
    nyquist[h // 2, :] = True
    nyquist[:, w // 2] = True
    return (power[nyquist].sum() / power.sum()).item()


def checkerboard_score(net: nn.Module, image_size: int | None = None, value: float = 0.5,
                       margin: int | None = None) -> float:
    """:func:`nyquist_fraction` of :func:`checkerboard_map`: 0 = no checkerboard, 1 = all of it.

    Args:
        net: a generator or discriminator of :mod:`repair.nets`.
        image_size: side of the square input (default: the net's own, else 64).
        value: gray level of the flat input.
        margin: border pixels ignored (default ``image_size // 8``, even).
    """
    image = checkerboard_map(net, image_size, value)
    if margin is None:
        margin = image.shape[-1] // 16 * 2
    return nyquist_fraction(image, margin)
