"""Operators per training step and steps/s, before and after the vectorised CRF, side by side in one run.

A training step's time on a GPU is mostly per-operator overhead when the
model is small relative to the GPU: Python dispatch, kernel launches, and
host-device synchronisations. This benchmark counts the operators of one
step with ``torch.profiler`` on whatever device runs it, using tiny encoders
so the framework's overhead, not arithmetic, is what is measured.

Paths compared (same model weights, same batches, same optimiser):

* ``before``: pytorch-crf (``xlingual.models.crf.ReferenceCrf``) for every
  CRF, Adam/AdamW's default update (a loop over parameter tensors on CPU;
  PyTorch picks multi-tensor kernels on CUDA), ``clip_grad_norm_``, and the
  loss read on the host after every step (``loss.item()``), as the engine did;
* ``after``: the vectorised ``MaskedCrf``, the fused optimiser and the
  clipping the engine now uses, and the loss summed on the device
  (``xlingual.train.engine.DeviceLossSum``), read only at logging points.

Gradient clipping follows the paper's configs: UMT at 1.0, ACN none.

Models: ACN text-only on CMNER-like posts (30-250 characters, the paper's
batch 16), UMT text-only with a 2-layer H=32 BERT on Twitter-like (8-35
words) and CMNER-like posts. "Operators" are the ATen operators a step
dispatches (one per call from Python or from the autograd engine; calls an
operator makes internally are listed separately as "nested").

    .venv/bin/python benchmarks/bench_ops.py                  # ~1-2 minutes on one CPU thread
    .venv/bin/python benchmarks/bench_ops.py --device cuda --steps 50
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from torch.autograd.profiler import record_function

from _record import add_results_option, recorder
from xlingual.data.sample import Sample
from xlingual.models.acn import AcnModel
from xlingual.models.base import MnerModel
from xlingual.models.crf import MaskedCrf, ReferenceCrf
from xlingual.models.umt import UmtModel
from xlingual.testing.tiny_bert import build_tiny_bert
from xlingual.train.engine import FUSED_OPTIMIZER_DEVICES, DeviceLossSum, build_optimizer, clip_by_total_norm

LABELS = ["O"] * 6 + ["B-PER", "I-PER", "B-LOC", "B-ORG", "I-ORG", "B-MISC"]


def synthetic_posts(count: int, low: int, high: int, chinese: bool, seed: int) -> list[Sample]:
    rng = np.random.default_rng(seed)
    alphabet = [chr(c) for c in range(0x4E00, 0x4E00 + 2000)] if chinese else [f"word{i}" for i in range(2000)]
    posts = []
    for index in range(count):
        length = int(rng.integers(low, high + 1))
        tokens = [alphabet[i] for i in rng.integers(0, len(alphabet), size=length)]
        labels = [LABELS[i] for i in rng.integers(0, len(LABELS), size=length)]
        labels = ["B" + label[1:] if label.startswith("I-") and (i == 0 or labels[i - 1] == "O") else label for i, label in enumerate(labels)]
        posts.append(Sample(id=str(index), tokens=tokens, labels=labels, images=[], lang="zh" if chinese else "en"))
    return posts


@dataclass
class Setup:
    name: str
    model: MnerModel
    batches: list[dict[str, torch.Tensor]]
    collate: Callable[[], dict[str, torch.Tensor]]
    optimizer: str
    max_grad_norm: float | None


def setups(folder: Path, batch_size: int, batches: int) -> Iterator[Setup]:
    count = batch_size * batches
    cmner = synthetic_posts(count, 30, 250, chinese=True, seed=1)
    acn = AcnModel.build({"word_dim": 32, "char_dim": 8, "char_filters": 8, "char_out": 8, "hidden": 32, "use_image": False, "seed": 1}, cmner)
    yield _setup("ACN text-only, CMNER-like (30-250 chars)", acn, cmner, batch_size, "adam", None)
    twitter = synthetic_posts(count, 8, 35, chinese=False, seed=2)
    for name, posts, length in (("Twitter-like (8-35 words)", twitter, 128), ("CMNER-like (30-250 chars)", cmner, 256)):
        encoder = build_tiny_bert(folder / name[:7], [t for p in posts for t in p.tokens], hidden_size=32, num_hidden_layers=2)
        torch.manual_seed(0)
        umt = UmtModel.build({"encoder": str(encoder), "cross_heads": 2, "use_image": False, "max_length": length}, [])
        yield _setup(f"UMT text-only, {name}", umt, posts, batch_size, "adamw", 1.0)


def _setup(name: str, model: MnerModel, posts: list[Sample], batch_size: int, optimizer: str, max_grad_norm: float | None) -> Setup:
    items = model.encode(posts)
    chunks = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    return Setup(name, model, [model.collate(chunk) for chunk in chunks], lambda: model.collate(chunks[0]), optimizer, max_grad_norm)


@contextmanager
def crf_implementation(model: MnerModel, reference: bool) -> Iterator[None]:
    """Swap every CRF of ``model`` for pytorch-crf (same weights) while ``reference`` is on."""
    names = [name for name, module in model.named_children() if isinstance(module, MaskedCrf)]
    originals = {name: getattr(model, name) for name in names}
    if reference:
        for name, crf in originals.items():
            replacement = ReferenceCrf(crf.num_tags).to(crf.transitions.device)
            replacement.load_state_dict(crf.state_dict())
            setattr(model, name, replacement)
    try:
        yield
    finally:
        for name, crf in originals.items():
            setattr(model, name, crf)


@contextmanager
def labelled_modules(model: MnerModel) -> Iterator[None]:
    """Label each top-level module's forward (and the CRFs' ``nll``) so profiled operators can be attributed."""
    patched = []
    for name, module in model.named_children():
        for method in ("forward", "nll"):
            if hasattr(module, method):
                original = getattr(module, method)

                def wrapped(*args, __original=original, __label=f"module:{name}", **kwargs):
                    with record_function(__label):
                        return __original(*args, **kwargs)

                setattr(module, method, wrapped)
                patched.append((module, method))
    home = sys.modules[type(model).__module__]
    joint = getattr(home, "joint_nll", None)
    if joint is not None:  # UMT's two CRFs in one call

        def labelled_joint(*args, **kwargs):
            with record_function("module:crf+span_crf"):
                return joint(*args, **kwargs)

        home.joint_nll = labelled_joint
    try:
        yield
    finally:
        for module, method in patched:
            delattr(module, method)
        if joint is not None:
            home.joint_nll = joint


def train_step(model: MnerModel, optimizer: torch.optim.Optimizer, batch: dict[str, torch.Tensor], losses: DeviceLossSum | None,
               max_grad_norm: float | None) -> None:
    """What the engine does per step: forward, backward, clip, optimiser step; the loss read on the host or summed on the device."""
    with record_function("phase:forward"):
        loss = model(batch)["loss"]
    with record_function("phase:backward"):
        loss.backward()
    with record_function("phase:optimizer"):
        if max_grad_norm and losses is None:  # as the paper's configs: UMT clips at 1.0, ACN does not clip
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        elif max_grad_norm:
            clip_by_total_norm([p.grad for p in model.parameters() if p.grad is not None], max_grad_norm)
        optimizer.step()
        optimizer.zero_grad()
    with record_function("phase:loss"):
        if losses is None:
            float(loss.item())
        else:
            losses.add(loss)


def _label(event) -> str:
    node = event
    while node is not None:
        if node.name.startswith(("module:", "phase:")):
            return node.name.split(":", 1)[1]
        if node.name.startswith("autograd::engine"):
            return "backward"
        node = node.cpu_parent
    return "other"


def count_ops(run: Callable[[], None]) -> tuple[int, int, Counter]:
    """(top-level operators, nested operators, top-level operators per label) of one call to ``run``."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
        run()
    top, nested, per_label = 0, 0, Counter()
    for event in profiler.events():
        if not event.name.startswith("aten::"):
            continue
        parent = event.cpu_parent
        while parent is not None and not parent.name.startswith("aten::"):
            parent = parent.cpu_parent
        if parent is None:
            top += 1
            per_label[_label(event)] += 1
        else:
            nested += 1
    return top, nested, per_label


def measure(setup: Setup, reference: bool, steps: int, device: torch.device) -> dict:
    model = setup.model.to(device).train()
    torch.manual_seed(0)
    stage = SimpleNamespace(optimizer=setup.optimizer, lr=1e-3, weight_decay=0.01)
    optimizer = build_optimizer(model, stage, fused=not reference and device.type in FUSED_OPTIMIZER_DEVICES)
    batches = [{k: v.to(device) for k, v in batch.items()} for batch in setup.batches]
    losses = None if reference else DeviceLossSum()
    synchronise = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    with crf_implementation(model, reference):
        for batch in batches[:2]:  # warm-up
            train_step(model, optimizer, batch, losses, setup.max_grad_norm)
        synchronise()
        with labelled_modules(model):
            counts = [count_ops(lambda b=batch: train_step(model, optimizer, b, losses, setup.max_grad_norm)) for batch in batches[:3]]
        synchronise()
        start = time.perf_counter()
        for step in range(steps):
            train_step(model, optimizer, batches[step % len(batches)], losses, setup.max_grad_norm)
        if losses is not None:
            losses.read()
        synchronise()
        seconds = (time.perf_counter() - start) / steps
    per_label = sum((c[2] for c in counts), Counter())
    return {
        "ops": sum(c[0] for c in counts) / len(counts),
        "nested": sum(c[1] for c in counts) / len(counts),
        "per_label": {k: v / len(counts) for k, v in per_label.items()},
        "steps_per_s": 1.0 / seconds,
    }


def collate_ops(setup: Setup) -> int:
    return count_ops(setup.collate)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per path and model")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    add_results_option(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = recorder(__file__, args, f"tiny encoders, batch {args.batch}, {args.steps} timed steps per path, device {args.device}")
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    print(f"device {device} ({name}), torch {torch.__version__}, {args.threads} thread(s), load average {os.getloadavg()[0]:.2f}, batch {args.batch}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for setup in setups(Path(tmp), args.batch, batches=4):
            before = measure(setup, True, args.steps, device)
            after = measure(setup, False, args.steps, device)
            print(f"\n{setup.name}: collate {collate_ops(setup)} operators per batch", flush=True)
            print(f"  {'':10s} {'operators/step':>15s} {'(nested)':>9s} {'steps/s':>8s}", flush=True)
            for label, result in (("before", before), ("after", after)):
                print(f"  {label:10s} {result['ops']:15.0f} {result['nested']:9.0f} {result['steps_per_s']:8.2f}", flush=True)
            print(f"  ratio      {before['ops'] / after['ops']:14.1f}x {'':9s} {after['steps_per_s'] / before['steps_per_s']:7.2f}x", flush=True)
            out.record(f"{setup.name}: operators per training step (vectorised CRF, fused optimiser)", after["ops"], "",
                       before["ops"] / after["ops"], "fewer than pytorch-crf and the default optimiser")
            out.record(f"{setup.name}: training speed", after["steps_per_s"], "steps/s",
                       after["steps_per_s"] / before["steps_per_s"], "the speed before")
            labels = sorted(set(before["per_label"]) | set(after["per_label"]), key=lambda k: -before["per_label"].get(k, 0))
            print("  per module / phase (before -> after): " + ", ".join(
                f"{k} {before['per_label'].get(k, 0):.0f}->{after['per_label'].get(k, 0):.0f}" for k in labels), flush=True)


if __name__ == "__main__":
    main()
