"""The one restorer contract of the course, and the restorers every comparison starts from.

A **restorer** is any callable ``restore(x_damaged, mask=None) -> x_restored``:

* ``x_damaged``: ``(B, 1, H, W)`` float tensor, grayscale in ``[-1, 1]`` (what
  :func:`repair.images.load_gray` returns, with a batch axis);
* ``mask``: ``None``, or a ``(B, 1, H, W)`` bool tensor, True where the damage is (the true mask of
  :func:`repair.damage.damage`). Only an *oracle* uses it; every restorer a user can run ignores
  it or guesses its own;
* returns a tensor of ``x_damaged``'s shape, range and device.

The classical restorers (:mod:`repair.classical`), the trained generators (:func:`wrap_generator`;
:func:`repair.restore.as_restorer` for large photos in tiles) and the methods of chapters 04-06 all
keep it, so any of them can be evaluated (:func:`repair.evaluate.evaluate`) or run on files
(:func:`repair.restore.restore_files`) without an adapter.
"""

from __future__ import annotations

from typing import Callable, Mapping

import torch

from repair import classical

__all__ = ["Restorer", "builtin_methods", "wrap_generator", "resolve_methods"]

Restorer = Callable[..., torch.Tensor]
"""``(x_damaged, mask=None) -> x_restored``, see the module docstring."""


def _damaged(x_damaged: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """No restoration at all: the score every method has to beat."""
    return x_damaged


def _blind(method: Restorer) -> Restorer:
    def restore(x_damaged: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``method`` without the mask: what a user can run (nobody tells it the damage)."""
        return method(x_damaged, None)
    restore.__doc__ = method.__doc__
    return restore


def builtin_methods() -> dict[str, Restorer]:
    """The methods that need no checkpoint, by name: ``damaged`` (no restoration), the classical
    restorers as a user runs them (blind: ``inpaint-sharpen`` guesses its mask), and the oracle
    ``inpaint-sharpen-oracle``, given the true mask (:data:`ORACLES`)."""
    blind = {name: _blind(method) for name, method in classical.CLASSICAL.items()}
    return {"damaged": _damaged, **blind, "inpaint-sharpen-oracle": classical.inpaint_sharpen}


def wrap_generator(net_G: torch.nn.Module, device: str | torch.device = "cpu") -> Restorer:
    """A trained generator as a method: ``net_G(x_damaged)`` in eval mode without gradients.

    Args:
        net_G: maps ``(B, 1, H, W)`` in ``[-1, 1]`` to the same shape and range; the mask is unused.
        device: where to run it; inputs are moved there and results back to the input's device.
    """
    net_G = net_G.to(device).eval()
    def restore(x_damaged: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``net_G(x_damaged)`` on ``device``, back on the input's device."""
        with torch.no_grad():
            return net_G(x_damaged.to(device)).to(x_damaged.device)

    return restore


def resolve_methods(methods: str | list | tuple | Mapping | None = None,
                    extra: Mapping[str, Restorer] | None = None) -> dict[str, Restorer]:
    """Turn names and/or callables into ``{name: method}``.

    Args:
        methods: ``None`` (every built-in and every ``extra``), a comma-separated string or list of
            names, or a dict ``{name: callable | nn.Module | None}`` (``None``: look the name up).
        extra: more named methods (e.g. wrapped checkpoints) that names may refer to.

    Raises:
        ValueError: an unknown name, or a method that is not callable.
    """
    available = {**builtin_methods(), **(extra or {})}
    if methods is None:
        return available
    if isinstance(methods, str):
        methods = [name.strip() for name in methods.split(",") if name.strip()]
    items = methods.items() if isinstance(methods, Mapping) else [(name, None) for name in methods]
    resolved: dict[str, Restorer] = {}
    for name, method in items:
        if method is None:
            if name not in available:
                raise ValueError(f"unknown method {name!r}: choose from {', '.join(available)} "
                                 f"(or pass a callable (x_damaged, mask) -> x_restored)")
            method = available[name]
        elif isinstance(method, torch.nn.Module):
            method = wrap_generator(method)
        if not callable(method):
            raise ValueError(f"method {name!r} is not callable: give a function "
                             f"(x_damaged, mask) -> x_restored or a generator nn.Module")
        resolved[str(name)] = method
    if not resolved:
        raise ValueError("no methods to evaluate: name at least one, e.g. 'damaged'")
    return resolved
