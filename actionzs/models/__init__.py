"""Encoder families, chosen from the checkpoint's config (not its name) through `registry`."""

from __future__ import annotations

from .base import Encoder, Features, Identity, Plan, ScoreHead
from .checkpoint import CheckpointEncoder
from .clip import DualEncoder
from .device import resolve_device, resolve_dtype
from .frame import FrameEncoder, FramePlan
from .loading import DEFAULT_MODEL, ModelRef, _locate, load_encoder
from .registry import DEFAULT_FAMILY, FAMILIES, encoder_for, family_for, register_encoder, unregister_encoder
from .xclip import ClipPlan, XClipEncoder

__all__ = [
    "DEFAULT_FAMILY", "DEFAULT_MODEL", "FAMILIES", "CheckpointEncoder", "ClipPlan", "DualEncoder", "Encoder", "Features",
    "FrameEncoder", "FramePlan", "Identity", "ModelRef", "Plan", "ScoreHead", "XClipEncoder", "encoder_for", "family_for",
    "load_encoder", "register_encoder", "resolve_device", "resolve_dtype", "unregister_encoder",
]
