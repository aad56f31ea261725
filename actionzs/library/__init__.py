"""A library of videos and images: indexed once, then searched and re-labelled without decoding.

Names are imported on first use, as in `actionzs` itself: the store and the neighbour index need
neither torch nor faiss until they are used.
"""

from __future__ import annotations

import importlib

_EXPORTS = {"IndexReport": "library", "Library": "library", "Query": "library", "Moment": "moments"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'actionzs.library' has no attribute {name!r}")
