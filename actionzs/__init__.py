"""actionzs: zero-shot video action recognition.

    >>> import actionzs
    >>> clf = actionzs.pipeline()                                  # openai/clip-vit-base-patch32
    >>> clf("match.mp4", candidate_labels=["shooting a free throw", "dribbling"])
    [{'label': 'shooting a free throw', 'score': 0.83, 'similarity': 0.27}, ...]

Names are imported on first use, so `actionzs probe` and `--help` start without loading torch, and
importing actionzs changes nothing outside it: the transformers task is registered only by
`actionzs.register_transformers_task()`.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "pipeline": "classifier",
    "ZeroShotVideoClassifier": "classifier",
    "Library": "library",
    "Query": "library",
    "Moment": "library",
    "VideoResult": "results",
    "embed_video": "embed",
    "Opener": "embed",
    "LocalExecutor": "executor",
    "register_transformers_task": "hf",
    "RunOptions": "options",
    "EventOptions": "events",
    "find_events": "events",
    "open_video": "video",
    "Video": "video",
    "FrameBatch": "frames",
    "FrameEmbeddings": "embeddings",
    "ClipEmbeddings": "embeddings",
    "Label": "prompts",
    "read_labels_file": "prompts",
    "load_encoder": "models",
    "ModelRef": "models",
    "Encoder": "models",
    "FrameEncoder": "models",
    "register_encoder": "models",
    "load_config": "config",
    "ActionzsError": "errors",
    "VideoDecodeError": "errors",
    "FrameIndexError": "errors",
    "TimelineChanged": "errors",
    "ModelLoadError": "errors",
    "InvalidInputError": "errors",
}
__all__ = sorted(_EXPORTS) + ["sampling"]


def __getattr__(name: str):
    if name == "sampling":
        return importlib.import_module(".sampling", __name__)
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'actionzs' has no attribute {name!r}")
