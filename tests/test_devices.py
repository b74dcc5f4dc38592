"""One device rule for every stage: ``auto`` picks the GPU when there is one; an unusable explicit device is a user error."""

from __future__ import annotations

import pytest

from xlingual.devices import DEFAULT_DEVICE, resolve_device
from xlingual.errors import ConfigError


@pytest.mark.parametrize("has_cuda, expected", [(True, "cuda"), (False, "cpu")])
def test_auto_is_the_default_and_follows_the_backend(has_cuda: bool, expected: str) -> None:
    assert DEFAULT_DEVICE == "auto"
    assert resolve_device(cuda_available=lambda: has_cuda) == expected


def test_explicit_devices_are_kept_when_usable() -> None:
    assert resolve_device("cpu", lambda: False) == "cpu"
    assert resolve_device("cuda", lambda: True) == "cuda"
    assert resolve_device("cuda:1", lambda: True) == "cuda:1"


@pytest.mark.parametrize("device, has_cuda, message", [
    ("cuda", False, "--device cuda: CUDA is not available"),
    ("cuda:7", False, "--device cuda:7: CUDA is not available"),
    ("gpu", True, "--device gpu: choose auto, cpu, cuda or cuda:N"),
    ("cuda:x", True, "--device cuda:x: choose"),
])
def test_unusable_devices_are_one_line_errors(device: str, has_cuda: bool, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve_device(device, lambda: has_cuda)


def test_importing_the_rule_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = "import sys, xlingual.devices; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
