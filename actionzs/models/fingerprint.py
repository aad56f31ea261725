"""A model's identity from its content, not from the string that named it.

`./clip-b32` and `/abs/clip-b32` are one model; two folders both called `DIR` with other weights are
two. A checkpoint folder is fingerprinted from its small files (configs, tokenizer) in full and its
weight files by size and their first and last MiB (each file's header names every tensor, and the
data differ wherever the weights do); a model held only in memory from its config and a sample of
every parameter.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

#: Files larger than this are hashed by size and their first and last `_SAMPLE` bytes.
_WHOLE_LIMIT = 16 * 2**20
_SAMPLE = 2**20


def checkpoint_fingerprint(folder: str | os.PathLike) -> str:
    """"sha256:<16 hex digits>" over the files at the top of a checkpoint folder."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(folder).iterdir() if p.is_file() and not p.name.startswith(".")):
        size = path.stat().st_size
        digest.update(f"{path.name}\0{size}\0".encode("utf-8", "surrogateescape"))
        with open(path, "rb") as handle:
            if size <= _WHOLE_LIMIT:
                digest.update(handle.read())
            else:
                digest.update(handle.read(_SAMPLE))
                handle.seek(size - _SAMPLE)
                digest.update(handle.read(_SAMPLE))
    return f"sha256:{digest.hexdigest()[:16]}"


def checkpoint_folder(name_or_path: str) -> str | None:
    """The folder a model was loaded from: a local directory, or a hub id's cached snapshot."""
    if not name_or_path:
        return None
    if os.path.isdir(name_or_path):
        return name_or_path
    try:
        from huggingface_hub import try_to_load_from_cache

        config = try_to_load_from_cache(name_or_path, "config.json")
    except Exception:  # not a valid hub id either
        return None
    return os.path.dirname(config) if isinstance(config, str) else None


def model_fingerprint(model) -> str:
    """The fingerprint of a loaded transformers model: its checkpoint folder's when known, else one
    made from its config and a sample of each parameter (equal for equal weights)."""
    folder = checkpoint_folder(getattr(model, "name_or_path", "") or "")
    if folder is not None:
        return checkpoint_fingerprint(folder)
    import json

    import torch

    config = {k: v for k, v in model.config.to_dict().items() if k != "_name_or_path"}
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    with torch.no_grad():
        for name, parameter in model.state_dict().items():
            flat = parameter.detach().reshape(-1)
            digest.update(f"{name}\0{tuple(parameter.shape)}\0".encode())
            digest.update(flat[:: max(1, len(flat) // 256)].float().cpu().numpy().tobytes())
    return f"sha256:{digest.hexdigest()[:16]}"
