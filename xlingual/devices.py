"""Which device a computation runs on: one rule for feature extraction, translation and embedding search.

``auto`` (the default everywhere) means the GPU when one is present, else the
CPU. An explicit ``cuda``/``cuda:N`` on a machine without CUDA is a user
error, not a silent fall-back to the CPU: a run that was asked to use the GPU
and quietly used the CPU would report timings for the wrong machine.
"""

from __future__ import annotations

from collections.abc import Callable

from xlingual.errors import ConfigError

DEFAULT_DEVICE = "auto"


def _torch_cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def resolve_device(device: str = DEFAULT_DEVICE, cuda_available: Callable[[], bool] = _torch_cuda_available) -> str:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` as the concrete device name (``cpu``, ``cuda``, ``cuda:N``).

    ``cuda_available`` says whether this backend sees a GPU (torch by default;
    CTranslate2 counts its own devices). Anything else is a ``--device`` error.
    """
    if device == "auto":
        return "cuda" if cuda_available() else "cpu"
    if device == "cpu":
        return device
    kind, _, index = device.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise ConfigError(f"--device {device}: choose auto, cpu, cuda or cuda:N")
    if not cuda_available():
        raise ConfigError(f"--device {device}: CUDA is not available here (use --device auto or cpu)")
    return device


__all__ = ["DEFAULT_DEVICE", "resolve_device"]
