"""Re-scoring: from a run's saved predictions, or a saved model on any dataset file.

``evaluate_run`` never touches a model: it reads ``predictions/*.jsonl``
(predicted labels with the gold labels in ``meta.gold``), so a changed metric
can be applied to old runs. ``evaluate_model_on_file`` loads a model folder
and predicts a file first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xlingual.data.formats import read_samples
from xlingual.errors import ConfigError
from xlingual.train.metrics import evaluate


def evaluate_run(run_dir: str | Path, splits: tuple[str, ...] = ("dev", "test")) -> dict[str, Any]:
    """Scores per split recomputed from the run's predictions."""
    folder = Path(run_dir) / "predictions"
    result: dict[str, Any] = {}
    for split in splits:
        path = folder / f"{split}.jsonl"
        if not path.is_file():
            raise ConfigError(f"{path}: no saved predictions (is {run_dir} a finished 'xl train' run folder?)")
        samples = read_samples(path, "jsonl", bio="keep")
        missing = [s.id for s in samples if "gold" not in s.meta]
        if missing:
            raise ConfigError(f"{path}: sample {missing[0]} has no meta.gold labels")
        result[split] = {mode: s.to_dict() for mode, s in evaluate([s.meta["gold"] for s in samples], [s.labels for s in samples]).items()}
    return result


def evaluate_model_on_file(model_dir: str | Path, data_file: str | Path, format: str | None = None,
                           features: str | Path | None = None, images: str = "all", batch_size: int = 32, seed: int = 0) -> dict[str, Any]:
    """Predict ``data_file`` with a saved model and score it against the file's labels."""
    from xlingual.models import load_model

    samples = read_samples(data_file, format)
    model = load_model(model_dir)
    visual = None
    if features is not None:
        from xlingual.features import FeatureCache, visual_lookup

        visual = visual_lookup(FeatureCache.open(features), mode=images, seed=seed)
    predictions = model.predict(samples, visual, batch_size=batch_size)
    return {"data": {mode: s.to_dict() for mode, s in evaluate([s.labels for s in samples], predictions).items()}}
