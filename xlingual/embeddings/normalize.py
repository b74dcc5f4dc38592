"""MUSE's embedding normalisation: a comma-separated sequence of ``center`` and ``renorm``.

Centring matters for distant pairs such as en-zh: without it the
unsupervised alignment gives P@1 near 0 (MUSE issues #30, #44), which is why
the default here is ``renorm,center,renorm`` rather than MUSE's empty default.
"""

from __future__ import annotations

import torch

from xlingual.embeddings.options import DEFAULT_NORMALIZE
from xlingual.errors import ConfigError

STEPS = ("center", "renorm")


def parse_steps(spec: str) -> list[str]:
    steps = [s.strip() for s in spec.split(",") if s.strip()]
    for step in steps:
        if step not in STEPS:
            raise ConfigError(f"--normalize: unknown step '{step}' (use a comma-separated list of {', '.join(STEPS)}, or '')")
    return steps


def normalize_embeddings(matrix: torch.Tensor, spec: str) -> torch.Tensor:
    """Apply the steps in order and return a new tensor."""
    out = matrix.clone()
    for step in parse_steps(spec):
        if step == "center":
            out -= out.mean(dim=0, keepdim=True)
        else:
            out /= out.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return out
