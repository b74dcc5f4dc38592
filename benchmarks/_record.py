"""One shared way for the benchmarks to emit their figures, with the conditions they were measured under.

Each benchmark still prints its own detailed report; the figures a reader
would quote also go through :class:`Recorder`, which appends one JSON line per
figure to the results file named by ``--results`` or the environment variable
``XLINGUAL_BENCH_RESULTS`` (nothing is written when neither is given). Every
line carries the conditions that make a timing mean something on a shared
machine: CPU model, cores, threads, load average when the benchmark started
and when the figure was taken, the torch version, the date, and the sizes the
benchmark ran at. ``benchmarks/render_readme.py`` turns the lines into the
README's "Measured here" table, so the README shows only what was measured.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

ENV_VAR = "XLINGUAL_BENCH_RESULTS"


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (the architecture where that file is absent)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> float | None:
    """The one-minute load average, or None where the platform has none."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def torch_version() -> str:
    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return "absent"


def torch_threads() -> int | None:
    """torch's intra-op threads, read only where the benchmark has already imported torch (importing it here would cost seconds)."""
    torch = sys.modules.get("torch")
    return int(torch.get_num_threads()) if torch is not None else None


def add_results_option(parser: argparse.ArgumentParser) -> None:
    """The ``--results`` option every benchmark shares; it defaults to the environment variable."""
    parser.add_argument("--results", type=Path, default=os.environ.get(ENV_VAR) or None,
                        help=f"append the figures as JSON lines to this file (default: ${ENV_VAR}; none: print only)")


@dataclass
class Recorder:
    """Appends a benchmark's figures to a results file; created when the benchmark starts so the load before is the load at its start."""

    benchmark: str
    setup: str
    path: Path | None
    load_before: float | None = field(default_factory=load_average)

    def conditions(self, threads: int | None = None) -> dict:
        return {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "threads": threads if threads is not None else torch_threads(),
            "load_before": self.load_before,
            "load_after": load_average(),
            "torch": torch_version(),
            "setup": self.setup,
        }

    def record(self, figure: str, value: float, unit: str = "", ratio: float | None = None, ratio_of: str = "",
               threads: int | None = None) -> dict:
        """Write one figure (``value`` in ``unit``; ``ratio`` a within-run comparison described by ``ratio_of``) and return its line."""
        line = {
            "benchmark": self.benchmark,
            "figure": figure,
            "value": float(value),
            "unit": unit,
            "ratio": None if ratio is None else float(ratio),
            "ratio_of": ratio_of,
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d"),
            "conditions": self.conditions(threads),
        }
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(line, ensure_ascii=False) + "\n")
        return line


def recorder(script: str, args: argparse.Namespace, setup: str) -> Recorder:
    """A recorder named after the benchmark script (``bench_acn.py``) writing to ``args.results``."""
    return Recorder(benchmark=Path(script).name, setup=setup, path=getattr(args, "results", None))


@dataclass
class StepTiming:
    """Where one training step's time goes: the model (forward, backward, optimiser), collation, and encoding amortised per step."""

    model_s: float
    collate_s: float
    encode_s: float

    @property
    def step_s(self) -> float:
        return self.model_s + self.collate_s + self.encode_s

    @property
    def outside_share(self) -> float:
        """The share of a step spent outside the model (data loading): the benchmarks' target is < 10 %."""
        return (self.collate_s + self.encode_s) / self.step_s


def report_training_step(out: Recorder, what: str, timing: StepTiming, batch: int, optimiser: str, encode_note: str = "encode") -> None:
    """Print and record a training-step measurement the same way for every model benchmark."""
    import resource

    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    step_s = timing.step_s
    print(f"training step: {step_s:.2f} s  ({1 / step_s:.3f} steps/s, {batch / step_s:.2f} posts/s)")
    print(f"  model (forward+backward+{optimiser}): {timing.model_s:.2f} s")
    print(f"  collate: {timing.collate_s * 1000:.1f} ms, {encode_note} (amortised): {timing.encode_s * 1000:.1f} ms")
    print(f"share of step time outside the model: {timing.outside_share:.2%} (target < 10%)")
    print(f"peak resident memory: {peak_gib:.2f} GiB")
    out.record(f"{what}: time per training step", step_s, "s")
    out.record(f"{what}: share of step time outside the model (target < 10 %)", 100 * timing.outside_share, "%")
    out.record(f"{what}: peak resident memory", peak_gib, "GiB")
