"""No code from data: a pickle planted wherever the project reads back from a folder never runs.

The payload's unpickling would create a marker file (the control test shows
it does under ``pickle.loads``). It is planted under the names each reader
looks for, and under pickle-looking names beside them, in the translation
shard folder, the translation cache folder, a feature cache, a run folder and
an aligned-embeddings folder; the readers and commands run (most refuse the
file, which is fine), and the marker must never appear. A second check reads
the package's source for the calls that unpickle or evaluate.

accelerate's RNG state files (``random_states_*.pkl`` in a run's ``state/``)
are the documented exception (docs/training.md); they are planted here too,
because accelerate reads them with torch's weights-only unpickler, which
refuses anything but tensors and plain containers.
"""

from __future__ import annotations

import ast
import builtins
import pickle
import sys
from pathlib import Path

import pytest
from fake_ray import FakeRay
from typer.testing import CliRunner

import xlingual
from xlingual.cli import app
from xlingual.errors import OutputSetError

runner = CliRunner()
GLOSSARY = "xlingual.translate.glossary:sample_en_zh"


class Payload:
    """Unpickling this calls ``open(marker, "w")``: the file appearing is code run from data."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (builtins.open, (str(self.marker), "w"))


@pytest.fixture()
def marker(tmp_path: Path) -> Path:
    return tmp_path / "MARKER-code-ran"


@pytest.fixture()
def payload(marker: Path) -> bytes:
    return pickle.dumps(Payload(marker))


def torch_payload(marker: Path, path: Path) -> None:
    """The payload as ``torch.save`` writes it (a zip archive holding the pickle), as a planted ``.bin`` would look."""
    import torch

    torch.save(Payload(marker), path)


def plant(folder: Path, payload: bytes, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in (*names, "state.pkl", "data.pickle", "x.npy", "weights.pt"):
        (folder / name).write_bytes(payload)


def test_the_payload_is_live(tmp_path: Path, payload: bytes, marker: Path) -> None:
    pickle.loads(payload)
    assert marker.exists(), "the planted pickle would not show code running; the other tests would prove nothing"


def test_translation_shards_and_cache_folder(monkeypatch, sample_data_dir, tmp_path, payload, marker) -> None:
    monkeypatch.setitem(sys.modules, "ray", FakeRay())
    out = tmp_path / "ray"
    shards = out / ".cache" / "shards"
    # under the names a shard takes now (.json) and took before (.pkl), and as the shard's translation cache
    plant(shards, payload, "train.00000.json", "train.00000.pkl", "valid.00000.json", "test.00000.pkl")
    base = ["translate", "--src", "en", "--tgt", "zh", "--data-dir", str(sample_data_dir), "--translator", GLOSSARY]
    result = runner.invoke(app, [*base, "--output", str(out), "--ray", "--shard-size", "8"])
    assert not marker.exists()
    assert result.exit_code == 0, result.output  # the planted shard files are discarded and projected again
    assert (out / "train.txt").is_file()
    assert not marker.exists()

    cached = tmp_path / "cached"  # the corpus cache itself replaced by the payload
    plant(cached / ".cache", payload, "translations.sqlite")
    result = runner.invoke(app, [*base, "--output", str(cached)])
    assert result.exit_code == 2 and "translation cache is unusable" in result.output and "Traceback" not in result.output, result.output
    assert not marker.exists()


def test_feature_cache_folder(tmp_path, payload, marker) -> None:
    from xlingual.errors import XlingualError
    from xlingual.features.cache import CACHE_FORMAT, CacheProducer, FeatureCache
    from xlingual.io import atomic_write_json

    folder = tmp_path / "features"
    plant(folder, payload, "cache.json", "shard-000001.safetensors")
    with pytest.raises(XlingualError):
        FeatureCache.open(folder)
    producer = CacheProducer("vgg16", (49, 512), "random:seed=0", "center", None, "float16")
    atomic_write_json(folder / "cache.json", {"format": CACHE_FORMAT, "producer": producer.to_dict(), "weights": "random"})
    try:
        FeatureCache.open(folder).get("a.jpg")
    except Exception:  # refused is fine; only running the payload is not
        pass
    assert not marker.exists()


def test_run_folder(tmp_path, payload, marker) -> None:
    from accelerate import Accelerator
    import torch

    from xlingual.models import load_model
    from xlingual.train.plugins import StageCheckpoints
    from xlingual.workspace import RunFolder

    run = tmp_path / "runs" / "r"
    folder = RunFolder(run)
    plant(run, payload, "metrics.json", "environment.json")
    plant(folder.model, payload, "config.json", "model.safetensors")
    torch_payload(marker, folder.model / "pytorch_model.bin")
    state = folder.stage_state("target")
    plant(state, payload, "loop_state.json")
    for name in ("optimizer.bin", "scheduler.bin", "pytorch_model.bin", "random_states_0.pkl"):
        torch_payload(marker, state / name)

    result = runner.invoke(app, ["report", str(tmp_path / "runs"), "--output", str(tmp_path / "report")])
    assert "Traceback" not in result.output and result.exit_code == 2, result.output
    with pytest.raises(Exception):
        load_model(folder.model)
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    accelerator = Accelerator(cpu=True)
    accelerator.prepare(model, optimizer, scheduler)
    with pytest.raises(Exception):
        StageCheckpoints(run, "target").load(accelerator)
    assert not marker.exists()


def test_embeddings_folder(tmp_path, payload, marker) -> None:
    from xlingual.embeddings.paths import find_aligned_pair
    from xlingual.embeddings.vectors import load_vectors
    from xlingual.workspace import DataDir

    paths = DataDir(tmp_path / "data").aligned("en", "zh")
    plant(paths.root, payload, paths.src_vectors.name, paths.tgt_vectors.name, paths.mapping.name, paths.summary.name)
    with pytest.raises(OutputSetError, match=r"alignment\.json: not readable JSON"):  # the summary lists the set: refused, not run
        find_aligned_pair(tmp_path / "data", "en", "zh")
    for path in (paths.src_vectors, paths.tgt_vectors):
        try:
            load_vectors(path)
        except Exception:
            pass
    assert not marker.exists()


UNSAFE_CALLS = {"pickle.load", "pickle.loads", "pickle.Unpickler", "yaml.load", "yaml.unsafe_load", "yaml.full_load", "marshal.loads",
                "eval", "exec", "joblib.load", "dill.load", "shelve.open"}


def _call_name(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return f"{func.value.id}.{func.attr}"
    return ""


def _keyword(node: ast.Call, name: str) -> object:
    return next((k.value.value for k in node.keywords if k.arg == name and isinstance(k.value, ast.Constant)), None)


def _safe_loader(path: Path, node: ast.Call) -> bool:
    """``yaml.load(..., Loader=X)`` where X, looked up in the module, is a subclass of PyYAML's SafeLoader (builds no objects)."""
    import importlib

    import yaml

    loader = next((k.value for k in node.keywords if k.arg == "Loader"), None)
    if not isinstance(loader, ast.Name):
        return False
    module = ".".join(path.relative_to(Path(xlingual.__file__).parent.parent).with_suffix("").parts)
    found = getattr(importlib.import_module(module), loader.id, None)
    return isinstance(found, type) and issubclass(found, yaml.SafeLoader)


def test_no_module_of_the_package_unpickles_or_evaluates() -> None:
    """``pickle``/``eval``/``exec`` are absent, ``yaml.load`` only with a SafeLoader subclass; ``torch.load`` only with
    ``weights_only=True``; ``np.load`` never with pickles."""
    found = []
    for path in sorted(Path(xlingual.__file__).parent.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                found += [f"{path}:{node.lineno}: import {m}" for m in modules if m.split(".")[0] in {"pickle", "dill", "joblib", "shelve", "marshal"}]
            if not isinstance(node, ast.Call):
                continue
            name = _call_name(node)
            if name == "yaml.load" and _safe_loader(path, node):
                continue
            if name in UNSAFE_CALLS:
                found.append(f"{path}:{node.lineno}: {name}")
            elif name == "torch.load" and _keyword(node, "weights_only") is not True:
                found.append(f"{path}:{node.lineno}: torch.load without weights_only=True")
            elif name in {"np.load", "numpy.load"} and _keyword(node, "allow_pickle") is not False and any(k.arg == "allow_pickle" for k in node.keywords):
                found.append(f"{path}:{node.lineno}: np.load with allow_pickle")
    assert not found, "\n".join(found)
