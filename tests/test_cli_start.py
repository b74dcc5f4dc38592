"""``xl`` must start without the heavy libraries: every command pays their import time otherwise."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torch", "transformers", "accelerate", "torchvision", "faiss", "fasttext", "ctranslate2", "sentencepiece", "jieba")


def modules_loaded_by(code: str, packages_only: bool = True) -> set[str]:
    """The modules a fresh interpreter has loaded after ``code``: their top-level packages, or (``packages_only=False``) every module."""
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
                         check=True, capture_output=True, text=True).stdout
    return {name.split(".")[0] if packages_only else name for name in json.loads(out.splitlines()[-1])}


def test_the_command_line_and_its_help_load_no_heavy_library():
    loaded = modules_loaded_by(
        "from typer.testing import CliRunner\nfrom xlingual.cli import app\n"
        "for args in (['--help'], ['data', '--help'], ['translate', '--help'], ['features', 'extract', '--help'],"
        " ['embeddings', 'train', '--help'], ['train', '--help']):\n"
        "    assert CliRunner().invoke(app, args).exit_code == 0, args"
    )
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_lazy_packages_still_export_their_names():
    import xlingual.embeddings as embeddings
    import xlingual.features as features

    for package in (embeddings, features):
        for name in package.__all__:
            assert getattr(package, name) is not None, f"{package.__name__}.{name}"


def test_the_builtin_catalogue_is_checked_on_first_use_not_at_import():
    """Checking builtin_datasets.yaml builds pydantic models (about 70 ms): `import xlingual` and `xl --help` do without."""
    assert "xlingual.data.declared" not in modules_loaded_by("import xlingual.cli", packages_only=False)
    assert "xlingual.data.declared" in modules_loaded_by("from xlingual.data import DATASETS", packages_only=False)


def test_scoring_two_files_loads_no_model_library(tmp_path):
    """xl evaluate --gold/--pred only reads and counts: it loads neither torch nor transformers."""
    gold = tmp_path / "gold.txt"
    gold.write_text("IMGID:1\nJohn\tB-PER\nruns\tO\n\n", encoding="utf-8")
    loaded = modules_loaded_by(f"from xlingual.evaluation.evaluate import evaluate_files\nevaluate_files({str(gold)!r}, {str(gold)!r})")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
