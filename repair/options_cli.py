"""Option types that several command lines share (argparse lives only in ``*cli.py`` modules).

Each wraps a check of the domain modules, so a bad value is refused with the domain's own message:
``repair damage --blur 2`` says "blur strength must be between 0 and 1, got 2".
"""

from __future__ import annotations

import argparse

from repair.damage import check_strength

__all__ = ["strength"]


def strength(text: str) -> float:
    """argparse type: a damage strength between 0 and 1 (:func:`repair.damage.check_strength`)."""
    try:
        return check_strength(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
