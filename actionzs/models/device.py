"""Where a model runs and in what precision."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import InvalidInputError


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
            raise InvalidInputError(f"dtype must be auto, float32, bfloat16 or float16; got {dtype!r}") from None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if device.type == "cpu" and _cpu_has_fast_bf16() else torch.float32


def resolve_device(device: str | int | torch.device | None) -> torch.device:
    """The device to run on (None: cuda if available, else cpu); one that torch cannot name or
    this machine does not have is an `InvalidInputError` saying which devices there are."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(device, int):
        device = torch.device("cpu") if device < 0 else torch.device("cuda", device)
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise InvalidInputError(f"device {device!r} is not a device name; use cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise InvalidInputError(f"device {str(device)!r}: no CUDA device is available here (torch {torch.__version__}); use cpu")
        if device.index is not None and device.index >= count:
            raise InvalidInputError(f"device {str(device)!r}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    elif device.type not in ("cpu", "mps", "xpu"):
        raise InvalidInputError(f"device {str(device)!r} is not supported; use cpu, cuda or cuda:N")
    return device
