"""Measurements that show what a network does: its loss head, receptive field, cost and artefacts.

Chapter 02 uses them to prove the paper's flaws with numbers rather than words:

- :func:`softmax_bce_analysis`, :func:`softmax_batch_coupling`, :func:`head_gradient_sweep`: what
  ``BCEWithLogitsLoss`` makes of a softmax output, and how much gradient reaches the generator.
- :func:`impulse_response`, :func:`receptive_field`: which input pixels one output pixel can see.
- :func:`flops`, :func:`peak_memory`: cost per image, counted on the ``meta`` device (no compute).
- :func:`checkerboard_map`, :func:`checkerboard_score`: the periodic pattern of strided layers.
"""

from __future__ import annotations

import copy
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from repair.nets import DISCRIMINATORS, REAL, PaperDiscriminator, meta_twin

__all__ = [
    "softmax_bce_analysis", "softmax_batch_coupling", "logit_twin", "generator_gradient_norm",
    "head_gradient_sweep", "impulse_response", "receptive_field", "flops", "peak_memory",
    "checkerboard_map", "checkerboard_score", "nyquist_fraction",
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


# ---------------------------------------------------------------- receptive field


def _is_discriminator(net: nn.Module) -> bool:
    return getattr(net, "arch", None) in DISCRIMINATORS


def _prepared(net: nn.Module, size: int, seed: int = 0, batch_size: int = 2) -> nn.Module:
    """An eval-mode copy of ``net`` fit for measuring one output pixel or a flat input.

    Two changes, neither touching ``net``: (1) a residual generator becomes a twin with the same
    weights that outputs ``tanh(delta)``, because its identity path would dominate every gradient
    (d x_restored / d x_damaged is about 1 at the same pixel); (2) BatchNorm layers get running
    statistics measured on ``batch_size`` random images in [-1, 1], so that eval mode normalises
    like training does (an untrained net's default statistics shrink every layer's output)
    without training mode's coupling of all pixels through the batch statistics.
    """
    device = next(net.parameters()).device
    if getattr(net, "hparams", {}).get("residual"):
        with torch.device("meta"):                          # no weights drawn, no RNG consumed
            twin = type(net)(**{**net.hparams, "residual": False})
        twin = twin.to_empty(device=device)
        twin.load_state_dict(net.state_dict())
    else:
        twin = copy.deepcopy(net)
    norms = [m for m in twin.modules() if isinstance(m, nn.BatchNorm2d)]
    if norms:
        for m in norms:
            m.reset_running_stats()
            m.momentum = None                               # cumulative average
        gen = torch.Generator().manual_seed(seed)
        x = (torch.rand(batch_size, 1, size, size, generator=gen) * 2 - 1).to(device)
        twin.train()
        with torch.no_grad():
            twin(x, x) if _is_discriminator(twin) else twin(x)
    return twin.eval()


def _size_for(net: nn.Module, image_size: int | None, default: int = 64) -> int:
    own = getattr(net, "hparams", {}).get("image_size")
    return image_size or own or default


def impulse_response(net: nn.Module, image_size: int | None = None, samples: int = 1,
                     seed: int = 0) -> torch.Tensor:
    """|d output / d input| for the output pixel at the centre: which input pixels it depends on.

    Measured on random inputs in [-1, 1], averaged over ``samples``, with the eval-mode copy of
    :func:`_prepared` (BatchNorm statistics from random images, identity path of a residual
    generator left out: the map is that of its correction ``delta``). For a discriminator the
    gradient is taken w.r.t. the candidate, for the centre of its logit map (or its P(real)).

    Args:
        net: a generator or discriminator of :mod:`repair.nets`.
        image_size: side of the square input (default: the net's own, else 64).
        samples: number of random inputs to average over.
        seed: seed of the random inputs.

    Returns:
        (H, W) float tensor, the mean absolute gradient map.
    """
    size = _size_for(net, image_size)
    net = _prepared(net, size, seed)
    device = next(net.parameters()).device
    gen = torch.Generator().manual_seed(seed + 1)
    total = torch.zeros(size, size)
    for _ in range(samples):
        x = (torch.rand(1, 1, size, size, generator=gen) * 2 - 1).to(device).requires_grad_(True)
        if _is_discriminator(net):
            x_damaged = (torch.rand(1, 1, size, size, generator=gen) * 2 - 1).to(device)
            out = net(x_damaged, x)                          # (1, 2), (1, 1) or (1, 1, h, w)
            if not net.returns_logits:
                target = out[0, REAL]                        # P(real)
            elif out.ndim == 4:                              # a logit map: its centre
                target = out[0, 0, out.shape[-2] // 2, out.shape[-1] // 2]
            else:
                target = out.sum()
        else:
            target = net(x)[0, 0, size // 2, size // 2]
        grad, = torch.autograd.grad(target, x)
        total += grad[0, 0].abs().cpu()
    return total / samples


def receptive_field(net: nn.Module, image_size: int | None = None, mass: float = 0.95,
                    samples: int = 1, seed: int = 0) -> dict:
    """The size of the input region one output pixel sees, from :func:`impulse_response`.

    Returns:
        ``{"extent": (h, w)`` bounding box of every input pixel with a non-zero gradient,
        ``"effective": s`` side of the smallest square around the gradient's centre of mass that
        holds ``mass`` of its total, ``"clipped": bool`` True if the extent reaches the border
        (make ``image_size`` larger), ``"map": (H, W) tensor}``.
    """
    grad = impulse_response(net, image_size, samples, seed)
    size = grad.shape[-1]
    rows = torch.nonzero(grad.sum(1) > 0).flatten()
    cols = torch.nonzero(grad.sum(0) > 0).flatten()
    if len(rows) == 0:
        return {"extent": (0, 0), "effective": 0, "clipped": False, "map": grad}
    extent = (int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1))
    clipped = bool(rows[0] == 0 or cols[0] == 0 or rows[-1] == size - 1 or cols[-1] == size - 1)
    total = grad.sum()
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    cy = int(round((grad * ys).sum().item() / total.item()))
    cx = int(round((grad * xs).sum().item() / total.item()))
    effective = size
    for r in range(size):
        window = grad[max(cy - r, 0):cy + r + 1, max(cx - r, 0):cx + r + 1]
        if window.sum() >= mass * total:
            effective = 2 * r + 1
            break
    return {"extent": extent, "effective": effective, "clipped": clipped, "map": grad}


# ---------------------------------------------------------------- cost


def _meta_inputs(net: nn.Module, image_size: int | None, batch_size: int) -> list[torch.Tensor]:
    size = _size_for(net, image_size, default=256)
    x = torch.zeros(batch_size, 1, size, size, device="meta")
    return [x, x] if _is_discriminator(net) else [x]


def flops(net: nn.Module, image_size: int | None = None, batch_size: int = 1) -> dict:
    """Floating-point operations of one forward and of forward + backward, counted on ``meta``.

    Counted by ``torch.utils.flop_counter.FlopCounterMode`` (2 per multiply-add of convolutions
    and matrix products; element-wise layers such as BatchNorm and ReLU are not counted). Nothing
    is computed: ``net`` is rebuilt from its hparams on the meta device.

    Args:
        net: a network of :mod:`repair.nets`.
        image_size: side of the square input (default: the net's own, else 256).
        batch_size: images per batch; divide by it for a per-image figure.

    Returns:
        ``{"forward": int, "forward_backward": int}``.
    """
    from torch.utils.flop_counter import FlopCounterMode

    twin = meta_twin(net)
    inputs = _meta_inputs(net, image_size, batch_size)
    with FlopCounterMode(display=False) as counter:
        out = twin(*inputs)
    forward = counter.get_total_flops()
    with FlopCounterMode(display=False) as counter:
        twin(*inputs).sum().backward()
    del out
    return {"forward": forward, "forward_backward": counter.get_total_flops()}


def peak_memory(net: nn.Module, image_size: int | None = None, batch_size: int = 1,
                device: str | torch.device = "meta") -> dict:
    """The bytes one training step of ``net`` must hold, counted; on a GPU also the measured peak.

    What is counted (float32, on the ``meta`` device, no compute): ``parameters``; ``gradients``
    (as many bytes again); ``adam_state`` (two moments, twice the parameters); ``saved`` the
    distinct tensors autograd keeps from the forward for the backward (the activations: this is
    what grows with image size and batch); ``largest_activation`` the biggest single layer output.
    ``training`` = parameters + gradients + adam_state + saved + the input batch: a lower bound on
    the peak of a step, since the backward also holds transient gradient buffers about the size
    of the largest activations. On a CUDA ``device`` the step is run for real and
    ``measured_peak`` is ``torch.cuda.max_memory_allocated`` (forward + backward, no optimiser).

    Args:
        net: a network of :mod:`repair.nets` (on CUDA a copy is moved to ``device``).
        image_size: side of the square input (default: the net's own, else 256).
        batch_size: images per batch.
        device: ``"meta"`` (count only) or a CUDA device (count and measure).
    """
    twin = meta_twin(net).train()
    inputs = _meta_inputs(net, image_size, batch_size)
    storages: dict[int, int] = {}
    largest = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        storages[storage._cdata] = storage.nbytes()
        return t

    def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        nonlocal largest
        if isinstance(output, torch.Tensor):
            largest = max(largest, output.untyped_storage().nbytes())

    handles = [m.register_forward_hook(hook) for m in twin.modules() if not list(m.children())]
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = twin(*inputs)
    finally:
        for h in handles:
            h.remove()
    param_ids = {p.untyped_storage()._cdata for p in twin.parameters()}
    saved = sum(n for key, n in storages.items() if key not in param_ids)
    params = sum(p.numel() * p.element_size() for p in twin.parameters())
    input_bytes = sum(x.numel() * x.element_size() for x in inputs)
    del out
    result = {"parameters": params, "gradients": params, "adam_state": 2 * params, "saved": saved,
              "largest_activation": largest,
              "training": 4 * params + saved + input_bytes}
    if torch.device(device).type == "cuda":
        result["measured_peak"] = _cuda_peak(net, [x.shape for x in inputs], device)
    return result


def _cuda_peak(net: nn.Module, shapes: list[torch.Size], device: str | torch.device) -> int:
    """torch.cuda.max_memory_allocated over one forward + backward of a copy of ``net``."""
    gpu_net = copy.deepcopy(net).to(device).train()
    inputs = [torch.zeros(shape, device=device) for shape in shapes]
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    start = torch.cuda.memory_allocated(device)
    gpu_net(*inputs).sum().backward()
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device)
    del gpu_net, inputs
    return peak - start + sum(p.numel() * p.element_size() for p in net.parameters())


# ---------------------------------------------------------------- checkerboard artefacts


def checkerboard_map(net: nn.Module, image_size: int | None = None,
                     value: float = 0.5) -> torch.Tensor:
    """What a flat gray image turns into: a generator's output, or a discriminator's input gradient.

    A flat input should give a flat output (or a flat gradient): any periodic pattern away from
    the borders is an artefact of the strided layers. Uses the eval-mode copy of
    :func:`_prepared`: for a residual generator, its correction ``tanh(delta)``.

    Args:
        net: a generator or discriminator of :mod:`repair.nets`.
        image_size: side of the square input (default: the net's own, else 64).
        value: the gray level in [-1, 1].

    Returns:
        (H, W) tensor.
    """
    size = _size_for(net, image_size)
    net = _prepared(net, size)
    x = torch.full((1, 1, size, size), float(value), device=next(net.parameters()).device)
    if _is_discriminator(net):
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
