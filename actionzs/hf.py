"""The "zero-shot-video-classification" task for `transformers.pipeline`, registered on request.

    import actionzs, transformers
    actionzs.register_transformers_task()
    transformers.pipeline("zero-shot-video-classification", model="openai/clip-vit-base-patch32")

returns `ZeroShotVideoClassificationPipeline`, which runs the same stages as `actionzs.pipeline`.
Nothing is registered by importing actionzs: registering imports transformers' pipelines, which a
plain `import actionzs` (or `actionzs probe`) must not pay for.
"""

from __future__ import annotations

TASK = "zero-shot-video-classification"


def register_transformers_task() -> None:
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
