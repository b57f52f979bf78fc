"""The anatomy of a network, measured: its layer table, receptive field, FLOPs and memory.

Chapter 02 reads the paper's networks with these (the paper's flaws shown with numbers):

- :func:`summary`, :func:`paper_table`, :func:`format_layers`: every layer with its output shape
  and parameters, laid out like the paper's Figs. 3 and 4.
- :func:`impulse_response`, :func:`receptive_field`: which input pixels one output pixel can see.
- :func:`flops`, :func:`peak_memory`: cost per image, counted on the ``meta`` device (no compute).

Every function takes a network of :mod:`repair.nets` and leaves it untouched (it measures a copy
or a twin on the ``meta`` device). The loss-head and artefact probes are in :mod:`repair.probe`.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from repair.nets import DISCRIMINATORS, GENERATORS, REAL

__all__ = [
    "meta_twin", "summary", "paper_table", "format_layers", "is_discriminator", "input_size",
    "measuring_copy", "impulse_response", "receptive_field", "flops", "peak_memory",
]


# ---------------------------------------------------------------- layer tables


def _inputs_for(net: nn.Module, image_size: int | None, batch_size: int,
                device: str | torch.device) -> tuple[int, list[torch.Tensor]]:
    """The image size to use and the forward arguments (one or two image batches) for ``net``."""
    own = getattr(net, "hparams", {}).get("image_size")
    if image_size is None:
        image_size = own or 256
    elif own is not None and own != image_size:
        raise ValueError(f"{type(net).__name__} was built for image_size={own}, not {image_size}; "
                         f"build one with image_size={image_size}")
    x = torch.zeros(batch_size, 1, image_size, image_size, device=device)
    return image_size, [x, x] if net.arch in DISCRIMINATORS else [x]


def meta_twin(net: nn.Module) -> nn.Module:
    """``net``'s architecture rebuilt on the ``meta`` device: shapes only, no memory, no compute."""
    registry = GENERATORS if net.arch in GENERATORS else DISCRIMINATORS
    with torch.device("meta"):
        twin = registry[net.arch](**net.hparams)
    return twin.train(net.training)


def summary(net: nn.Module, image_size: int | None = None, batch_size: int = 1, **kwargs):
    """torchinfo's summary of ``net`` for square grayscale images, computed on the meta device.

    Args:
        net: any network of this module (it is rebuilt from ``arch`` and ``hparams`` on ``meta``,
            so nothing is computed and ``net`` itself is not touched).
        image_size: side of the input; defaults to the net's own ``image_size`` or 256.
        batch_size: batch size shown in the shapes.
        **kwargs: passed to ``torchinfo.summary`` (e.g. ``depth``, ``col_names``, ``verbose``).
    """
    import torchinfo

    twin = meta_twin(net)
    _, inputs = _inputs_for(twin, image_size, batch_size, "meta")
    kwargs.setdefault("verbose", 0)
    kwargs.setdefault("col_names", ("output_size", "num_params"))
    return torchinfo.summary(twin, input_data=inputs, device="meta", **kwargs)


def paper_table(net: nn.Module, image_size: int | None = None) -> list[tuple[str, list[int], int]]:
    """The rows of a torchsummary-style table, as in the paper's Figs. 3 and 4.

    Returns ``[(layer, output_shape, params), ...]``, one row per leaf layer in the order it runs,
    e.g. ``("Conv2d-1", [-1, 32, 128, 128], 512)``.
    """
    stats = summary(net, image_size)
    leaves = [info for info in stats.summary_list if info.is_leaf_layer and info.executed]
    return [(f"{info.class_name}-{i}", [-1, *info.output_size[1:]], info.num_params)
            for i, info in enumerate(leaves, start=1)]


def format_layers(rows: list[tuple[str, list[int], int]]) -> str:
    """The rows of :func:`paper_table` as text laid out like the paper's figures."""
    lines = [f"{'Layer (type)':>22}  {'Output Shape':>24}  {'Param #':>12}"]
    for name, shape, params in rows:
        shape_text = "[" + ", ".join(str(s) for s in shape) + "]"
        lines.append(f"{name:>22}  {shape_text:>24}  {params:>12,}")
    total = sum(params for _, _, params in rows)
    lines.append(f"{'Total params:':>22}  {'':>24}  {total:>12,}")
    return "\n".join(lines)


# ---------------------------------------------------------------- receptive field


def is_discriminator(net: nn.Module) -> bool:
    """Whether ``net`` is one of :data:`repair.nets.DISCRIMINATORS` (it takes two images)."""
    return getattr(net, "arch", None) in DISCRIMINATORS


def measuring_copy(net: nn.Module, size: int, seed: int = 0, batch_size: int = 2) -> nn.Module:
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
            twin(x, x) if is_discriminator(twin) else twin(x)
    return twin.eval()


def input_size(net: nn.Module, image_size: int | None, default: int = 64) -> int:
    """``image_size`` if given, else the side ``net`` was built for, else ``default``."""
    own = getattr(net, "hparams", {}).get("image_size")
    return image_size or own or default


def impulse_response(net: nn.Module, image_size: int | None = None, samples: int = 1,
                     seed: int = 0) -> torch.Tensor:
    """|d output / d input| for the output pixel at the centre: which input pixels it depends on.

    Measured on random inputs in [-1, 1], averaged over ``samples``, with the eval-mode copy of
    :func:`measuring_copy` (BatchNorm statistics from random images, identity path of a residual
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
    size = input_size(net, image_size)
    net = measuring_copy(net, size, seed)
    device = next(net.parameters()).device
    gen = torch.Generator().manual_seed(seed + 1)
    total = torch.zeros(size, size)
    for _ in range(samples):
        x = (torch.rand(1, 1, size, size, generator=gen) * 2 - 1).to(device).requires_grad_(True)
        if is_discriminator(net):
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
    size = input_size(net, image_size, default=256)
    x = torch.zeros(batch_size, 1, size, size, device="meta")
    return [x, x] if is_discriminator(net) else [x]


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
        """Count each saved tensor's storage once (autograd's pack hook)."""
        storage = t.untyped_storage()
        storages[storage._cdata] = storage.nbytes()
        return t

    def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        """Track the largest single output (a forward hook)."""
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
