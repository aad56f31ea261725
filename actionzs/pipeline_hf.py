"""`ZeroShotVideoClassificationPipeline`: a transformers `Pipeline` over actionzs's stages."""

from __future__ import annotations

from transformers import Pipeline

from .classifier import ZeroShotVideoClassifier
from .models import encoder_for


class ZeroShotVideoClassificationPipeline(Pipeline):
    """preprocess: labels and options validated; forward: frame embeddings; postprocess: scores.

    Accepts the same inputs and keywords as `actionzs.pipeline(...)(video, candidate_labels, ...)`.
    """

    _load_processor = False
    _load_image_processor = True
    _load_feature_extractor = False
    _load_tokenizer = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        name = getattr(self.model, "name_or_path", None) or type(self.model).__name__
        self.classifier = ZeroShotVideoClassifier(encoder_for(name, self.model, self.tokenizer, self.image_processor))

    def _sanitize_parameters(self, candidate_labels=None, **options):
        preprocess = {"options": options}
        if candidate_labels is not None:
            preprocess["candidate_labels"] = candidate_labels
        return preprocess, {}, {}

    def preprocess(self, video, candidate_labels=None, options=None):
        labels, run = self.classifier.prepare(candidate_labels, **(options or {}))
        return {"video": video, "labels": labels, "run": run}

    def _forward(self, inputs):
        meanwhile = self.classifier.label_encoding(inputs["labels"], inputs["run"])
        return {**inputs, "embeddings": self.classifier.embeddings_for(inputs["video"], inputs["run"], meanwhile)}

    def postprocess(self, outputs):
        result = self.classifier.score(outputs["embeddings"], outputs["labels"], outputs["run"])
        return self.classifier.format(result)
