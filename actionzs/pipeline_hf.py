"""`ZeroShotVideoClassificationPipeline`: a transformers `ChunkPipeline` over actionzs's stages.

preprocess decodes: it opens the video, asks the encoder for its plan and yields the preprocessed
batches one at a time (so a long video is never held whole); `_forward` encodes each batch;
postprocess assembles the embeddings and scores the labels against them.
"""

from __future__ import annotations

from transformers.pipelines.base import ChunkPipeline

from .classifier import ZeroShotVideoClassifier
from .embeddings import StoredEmbeddings
from .heap import release_free_memory
from .models import encoder_for


class ZeroShotVideoClassificationPipeline(ChunkPipeline):
    """Accepts the same inputs and keywords as `actionzs.pipeline(...)(video, candidate_labels, ...)`."""

    _load_processor = False
    _load_image_processor = True
    _load_feature_extractor = False
    _load_tokenizer = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        name = getattr(self.model, "name_or_path", None) or type(self.model).__name__
        self.classifier = ZeroShotVideoClassifier(encoder_for(name, self.model, self.tokenizer, self.image_processor))

    def _sanitize_parameters(self, candidate_labels=None, **options):
        """Labels and every run option go to preprocess, where they are validated before any
        decoding and the plan is made; the later stages read them from what preprocess yields."""
        preprocess = {"options": options}
        if candidate_labels is not None:
            preprocess["candidate_labels"] = candidate_labels
        return preprocess, {}, {}

    def preprocess(self, video, candidate_labels=None, options=None):
        labels, run = self.classifier.prepare(candidate_labels, **(options or {}))
        head = {"labels": labels, "run": run}
        if isinstance(video, StoredEmbeddings):
            self.classifier.encoder.check(video)
            yield {**head, "embeddings": video, "is_last": True}
            return
        encoder = self.classifier.encoder
        with self.classifier.opener(video) as opened:
            plan = encoder.plan(opened.timeline, run)
            yield {**head, "plan": plan, "source": opened.path, "is_last": False}
            batches = plan.batches(opened, encoder.preprocessor, self.classifier.batch_size)
            batch = next(batches)
            for following in batches:
                yield {"pixels": batch, "is_last": False}
                batch = following
            yield {"pixels": batch, "is_last": True}

    def _forward(self, inputs):
        if "pixels" in inputs:
            encoded = self.classifier.encoder.encode(inputs["pixels"])
            release_free_memory()
            return {"encoded": encoded, "is_last": inputs["is_last"]}
        return inputs

    def postprocess(self, outputs):
        head, batches = outputs[0], outputs[1:]
        embeddings = head.get("embeddings")
        if embeddings is None:
            embeddings = head["plan"].finish([b["encoded"] for b in batches], head["source"])
        return self.classifier.format(self.classifier.score(embeddings, head["labels"], head["run"]))
