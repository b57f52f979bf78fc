"""repair: repairing damaged old photographs with GANs.

The package behind the course notebooks and the ``repair`` command line. Importing it only defines
names: no downloads, no seeds, no global settings. Heavy submodules (torch and friends) are imported
on use, e.g. ``from repair import damage``.

Value convention everywhere: grayscale images are float32 tensors of shape ``(B, 1, H, W)`` (or
``(1, H, W)`` for one image) with values in ``[-1, 1]``, the range of the generators' ``tanh``.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
