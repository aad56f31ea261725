"""Encoder families by the checkpoint's `model_type`: one table, so adding a family is one module
and one entry here, or one `register_encoder` call from outside the package."""

from __future__ import annotations

from ..errors import ModelLoadError
from .base import Encoder
from .clip import DualEncoder
from .xclip import XClipEncoder

#: model_type (from the checkpoint's config.json) -> the family that loads and runs it.
FAMILIES: dict[str, type[Encoder]] = {"xclip": XClipEncoder}
#: The family of every other checkpoint: any model with image and text features (CLIP, SigLIP, ...).
DEFAULT_FAMILY: type[Encoder] = DualEncoder


def register_encoder(model_type: str, family: type[Encoder]) -> None:
    """Run checkpoints whose config says `model_type` with `family`: an `Encoder` subclass with a
    classmethod `load(source, ref, local_files_only) -> Encoder` (`CheckpointEncoder` gives one
    for transformers models)."""
    if not (isinstance(family, type) and issubclass(family, Encoder)):
        raise TypeError(f"an encoder family must be an Encoder subclass, got {family!r}")
    FAMILIES[model_type] = family


def unregister_encoder(model_type: str) -> None:
    FAMILIES.pop(model_type, None)


def family_for(model_type: str) -> type[Encoder]:
    return FAMILIES.get(model_type, DEFAULT_FAMILY)


def encoder_for(name: str, model, tokenizer, image_processor) -> Encoder:
    """Wrap transformers parts already loaded in the family their config calls for."""
    family = family_for(model.config.model_type)
    if not family.accepts(model):
        raise ModelLoadError(f"model {name!r} ({model.config.model_type}) has no image and text features to compare")
    return family(name, model, tokenizer, image_processor)
