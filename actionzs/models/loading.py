"""Loading a checkpoint (hub id or local folder) as the family its config calls for, and the
picklable reference that loads the same model again in another process."""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass

from ..errors import ModelLoadError
from .base import Encoder
from .registry import family_for

DEFAULT_MODEL = "openai/clip-vit-base-patch32"
_OFFLINE_HINT = (
    "download it once on a machine with network access (e.g. `hf download {model} --local-dir DIR`) "
    "and pass DIR as the model (model=DIR, or --model DIR), or set HF_HOME to a cache that holds it"
)


@dataclass(frozen=True)
class ModelRef:
    """What loads a model: a hub id or a folder (absolute, so it means the same in any working
    directory), the device and dtype asked for (None / "auto" resolve where it loads), and the
    name results show. Plain strings: it pickles, and a worker process loads it with `loaded`."""

    model: str
    device: str | int | None = None
    dtype: str = "auto"
    name: str = ""

    @classmethod
    def of(cls, model: str, device=None, dtype="auto") -> ModelRef:
        model = str(model)
        where = os.path.abspath(model) if os.path.isdir(model) else model
        device = device if device is None or isinstance(device, int) else str(device)
        dtype = dtype if isinstance(dtype, str) or dtype is None else str(dtype).removeprefix("torch.")
        return cls(where, device, dtype or "auto", model)

    def load(self) -> Encoder:
        from .device import resolve_device, resolve_dtype

        resolve_dtype(self.dtype, resolve_device(self.device))  # a device or dtype that cannot be: said before any lookup
        source, local = _locate(self.model, self.name or self.model)
        return family_for(_model_type(source, local, self.name or self.model)).load(source, self, local)

    def loaded(self) -> Encoder:
        """The model loaded once per process: what an encoder unpickles to in a worker."""
        return _load_once(self)


@functools.lru_cache(maxsize=4)
def _load_once(ref: ModelRef) -> Encoder:
    return ref.load()


def load_encoder(model: str = DEFAULT_MODEL, device=None, dtype="auto") -> Encoder:
    """Load a checkpoint (hub id or local directory) as the encoder its config calls for.

    Weights load only from safetensors and remote code is never run.
    """
    return ModelRef.of(model, device, dtype).load()


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


def _locate(model: str, name: str | None = None) -> tuple[str, bool]:
    """(what to pass to from_pretrained, whether to stay off the network)."""
    name = name or model
    if os.path.isdir(model):
        return model, True
    if os.path.exists(model):
        raise ModelLoadError(f"model {name!r}: not a checkpoint directory")
    if _looks_like_folder(model):
        raise ModelLoadError(
            f"model {name!r}: not a checkpoint directory: no such folder {os.path.abspath(os.path.expanduser(model))} "
            f"(a hub id reads owner/name, e.g. {DEFAULT_MODEL})"
        )
    from huggingface_hub import constants, try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError

    try:
        cached = try_to_load_from_cache(model, "config.json")
    except HFValidationError:
        raise ModelLoadError(f"model {name!r}: neither a checkpoint directory nor a hub id (owner/name)") from None
    if isinstance(cached, str):
        return model, True
    if constants.HF_HUB_OFFLINE:
        raise ModelLoadError(f"model {name!r} is not in the local cache and HF_HUB_OFFLINE is set; " + _OFFLINE_HINT.format(model=name))
    if not _hub_reachable():
        raise ModelLoadError(f"model {name!r} is not cached and the model hub cannot be reached; " + _OFFLINE_HINT.format(model=name))
    return model, False


def _looks_like_folder(model: str) -> bool:
    """Whether a model name that is no folder was meant as one: it starts with `.`, `/` or `~`,
    holds a backslash or more than one `/`, is a bare name (a hub id reads owner/name), or its
    first part is a folder here (`models/clip-b32` with a `models` folder)."""
    if model.startswith((".", "/", "~")) or "\\" in model or model.count("/") != 1:
        return True
    return os.path.isdir(model.split("/")[0])


def _model_type(source: str, local: bool, name: str) -> str:
    """The `model_type` of the checkpoint's config.json, read as plain JSON (no model code runs)."""
    try:
        if os.path.isdir(source):
            path = os.path.join(source, "config.json")
        else:
            from huggingface_hub import hf_hub_download

            path = hf_hub_download(source, "config.json", local_files_only=local)
        with open(path, encoding="utf-8") as handle:
            config = json.load(handle)
    except Exception as exc:
        raise ModelLoadError(f"model {name!r} could not be loaded: no readable config.json ({exc})") from exc
    if not isinstance(config, dict) or not isinstance(config.get("model_type"), str):
        raise ModelLoadError(f"model {name!r} could not be loaded: config.json names no model_type")
    return config["model_type"]
