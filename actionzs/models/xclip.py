"""X-CLIP: a clip of exactly `frames_per_clip` frames becomes one video embedding, and each text is
conditioned on that clip's visual features by the model's prompt generator before scoring."""

from __future__ import annotations

import torch

from .base import ScoreHead, TransformersEncoder, normalise, projected, tokenize


class XClipEncoder(TransformersEncoder):
    texts_normalised = False

    def __init__(self, name: str, model, tokenizer, image_processor):
        super().__init__(name, model, tokenizer, image_processor)
        self.frames_per_clip = int(model.config.vision_config.num_frames)
        self.max_length = int(model.config.text_config.max_position_embeddings)
        self.head = ScoreHead(scale=float(model.logit_scale.detach().float().exp()))

    @torch.inference_mode()
    def embed_texts(self, texts: list[str]) -> torch.Tensor:
        """Projected text embeddings, not yet conditioned on any video (so they can be cached).

        Unlike frame encoders these are not normalised: the prompt generator adds to the raw vector.
        """
        inputs = tokenize(self.tokenizer, texts, self.max_length, True).to(self.device)
        return projected(self.model.get_text_features(**inputs)).float()

    @torch.inference_mode()
    def embed_clips(self, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Video embedding and prompt-generator visual features, as `XCLIPModel.forward` computes them."""
        m = self.model
        batch, frames, channels, height, width = pixels.shape
        pixels = pixels.reshape(-1, channels, height, width).to(self.device, m.dtype)
        vision = m.vision_model(pixel_values=pixels)
        cls = m.visual_projection(vision[1]).view(batch, frames, -1)
        video = m.mit(cls)[1]
        visual = m.prompts_visual_layernorm(vision[0][:, 1:, :]) @ m.prompts_visual_projection
        visual = visual.view(batch, frames, -1, video.shape[-1]).mean(dim=1)
        return {"video": normalise(video), "visual": visual.float()}

    @torch.inference_mode()
    def similarity(self, features: dict[str, torch.Tensor], texts: torch.Tensor) -> torch.Tensor:
        m = self.model
        visual = features["visual"].to(self.device, m.dtype)
        text = texts.to(self.device, m.dtype).unsqueeze(0).expand(visual.shape[0], -1, -1)
        text = normalise(text + m.prompts_generator(text, visual))
        return torch.einsum("bd,bkd->bk", features["video"].to(self.device), text).float()

    def __repr__(self) -> str:
        return f"XClipEncoder({self.name!r}, frames_per_clip={self.frames_per_clip})"

