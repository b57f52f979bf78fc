"""Where to compute: the one helper that turns ``"auto"``, ``"cpu"``, ``"cuda:1"`` ... into a device.

Training, restoring, inverting and evaluating all take a ``device`` parameter; the command lines and
the notebooks fill it with :func:`pick_device`, which fails early and clearly for a device this
machine lacks.
"""

from __future__ import annotations

import torch

__all__ = ["pick_device"]


def pick_device(name: str = "auto") -> torch.device:
    """``"auto"``: CUDA if present, else Apple's MPS, else the CPU; or the device named.

    Raises:
        ValueError: a name that is not a device (``gpu0``), or a device this machine lacks.
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"--device {name!r} is not a device: use auto, cpu, cuda, cuda:N or "
                         "mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for but CUDA is not available: use --device cpu")
    if device.type == "cuda" and device.index is not None \
            and device.index >= torch.cuda.device_count():
        raise ValueError(f"device {name!r} asked for but this machine has "
                         f"{torch.cuda.device_count()} CUDA device(s)")
    mps = getattr(torch.backends, "mps", None)
    if device.type == "mps" and not (mps and mps.is_available()):
        raise ValueError(f"device {name!r} asked for but Apple's MPS is not available here: "
                         "use --device cpu")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device {name!r} is not supported: use auto, cpu, cuda or mps")
    return device
