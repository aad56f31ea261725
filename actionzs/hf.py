"""The "zero-shot-video-classification" task for `transformers.pipeline`.

Importing actionzs registers it the moment transformers loads its pipelines (never earlier, so a
plain `import actionzs` stays light); after that

    transformers.pipeline("zero-shot-video-classification", model="openai/clip-vit-base-patch32")

returns this pipeline, which runs the same stages as `actionzs.pipeline`.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys

TASK = "zero-shot-video-classification"
_PIPELINES = "transformers.pipelines"


def register() -> None:
    """Register the task with transformers' pipeline registry (idempotent)."""
    from transformers import AutoModel
    from transformers.pipelines import PIPELINE_REGISTRY

    from .pipeline_hf import ZeroShotVideoClassificationPipeline

    if TASK not in PIPELINE_REGISTRY.get_supported_tasks():
        PIPELINE_REGISTRY.register_pipeline(
            TASK,
            pipeline_class=ZeroShotVideoClassificationPipeline,
            pt_model=AutoModel,
            default={"pt": ("openai/clip-vit-base-patch32", "main")},
            type="multimodal",
        )


class _RegisterOnImport(importlib.abc.MetaPathFinder):
    """Runs `register()` right after `transformers.pipelines` is first imported."""

    def find_spec(self, name, path, target=None):
        if name != _PIPELINES:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module) -> None:
            load(module)
            register()

        spec.loader.exec_module = exec_module
        return spec


def register_when_transformers_loads() -> None:
    if _PIPELINES in sys.modules:
        register()
    elif not any(isinstance(f, _RegisterOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _RegisterOnImport())
