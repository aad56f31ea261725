"""Encoders built on transformers, chosen from the checkpoint's config (not its name)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from ..errors import ModelLoadError
from .base import ClipEncoder, Encoder, FrameEncoder, ScoreHead
from .clip import DualEncoder
from .xclip import XClipEncoder

__all__ = [
    "ClipEncoder", "DualEncoder", "Encoder", "FrameEncoder", "ScoreHead", "XClipEncoder", "encoder_for", "load_encoder",
]

log = logging.getLogger(__name__)

DEFAULT_MODEL = "openai/clip-vit-base-patch32"
_OFFLINE_HINT = (
    "download it once on a machine with network access (e.g. `hf download {model} --local-dir DIR`) "
    "and pass DIR as the model (model=DIR, or --model DIR), or set HF_HOME to a cache that holds it"
)


def _cpu_has_fast_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """`auto`/None picks bfloat16 where the hardware computes it natively, else float32 (fp16 on old GPUs)."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in (None, "auto"):
        try:
            return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[str(dtype)]
        except KeyError:
            raise ValueError(f"dtype must be auto, float32, bfloat16 or float16; got {dtype!r}") from None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if device.type == "cpu" and _cpu_has_fast_bf16() else torch.float32


def resolve_device(device: str | int | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(device, int):
        return torch.device("cpu") if device < 0 else torch.device("cuda", device)
    return torch.device(device)


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the hub answers an HTTP request within `timeout` seconds (a bare TCP connect is not
    enough: proxies and firewalls accept connections they never complete)."""
    import urllib.error
    import urllib.request

    from huggingface_hub import constants

    request = urllib.request.Request(constants.ENDPOINT, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True  # it answered
    except (OSError, ValueError):
        return False


def _locate(model: str) -> tuple[str, bool]:
    """(what to pass to from_pretrained, whether to stay off the network)."""
    if os.path.isdir(model):
        return model, True
    if os.path.exists(model) or model.startswith((".", "/", "~")):
        raise ModelLoadError(f"model {model!r}: not a checkpoint directory")
    from huggingface_hub import constants, try_to_load_from_cache

    if isinstance(try_to_load_from_cache(model, "config.json"), str):
        return model, True
    if constants.HF_HUB_OFFLINE:
        raise ModelLoadError(f"model {model!r} is not in the local cache and HF_HUB_OFFLINE is set; " + _OFFLINE_HINT.format(model=model))
    if not _hub_reachable():
        raise ModelLoadError(f"model {model!r} is not cached and the model hub cannot be reached; " + _OFFLINE_HINT.format(model=model))
    return model, False


def load_encoder(model: str = DEFAULT_MODEL, device=None, dtype="auto") -> Encoder:
    """Load a checkpoint (hub id or local directory) as the encoder its config calls for.

    Weights load only from safetensors and remote code is never run.
    """
    from transformers import AutoModel, AutoProcessor

    source, local = _locate(str(model))
    device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, device)
    options = {"local_files_only": local, "trust_remote_code": False}
    try:
        weights = AutoModel.from_pretrained(source, dtype=torch_dtype, use_safetensors=True, **options)
        processor = AutoProcessor.from_pretrained(source, **options)
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError(f"model {model!r} could not be loaded: {exc}") from exc
    weights.eval().to(device)
    log.info("loaded %s on %s in %s", model, device, torch_dtype)
    return encoder_for(str(model), weights, processor.tokenizer, processor.image_processor)


def encoder_for(name: str, model, tokenizer, image_processor) -> Encoder:
    """Wrap loaded transformers parts in the encoder their config calls for."""
    if model.config.model_type == "xclip":
        return XClipEncoder(name, model, tokenizer, image_processor)
    if not all(hasattr(model, f) for f in ("get_image_features", "get_text_features")):
        raise ModelLoadError(f"model {name!r} ({model.config.model_type}) has no image and text features to compare")
    return DualEncoder(name, model, tokenizer, image_processor)
