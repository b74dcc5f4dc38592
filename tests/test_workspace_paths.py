"""Each file and folder name of the workspace is spelt in one module only.

``xlingual/workspace.py`` owns the layout of the data directory, run folders,
translation folders and stage state; a few formats own their own file names
(``io.py`` its temporary siblings, a model folder its weights, a feature cache
its description, the data directory its declarations). A string literal
anywhere else that spells one of these names is a second home for a
convention: the scan below fails on it, naming file and line. Docstrings and
comments may mention the names (they explain; they build no path).
"""

from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path

import pytest

from xlingual.io import atomic_write_dir, old_sibling, save_png, temp_sibling
from xlingual.workspace import (LOOP_STATE_NAME, PREVIEW_NAME, REPORT_NAME, TRANSLATION_CACHE, RunFolder, TranslationFolder,
                                other_test_split)

PACKAGE = Path(__file__).resolve().parent.parent / "xlingual"
WORKSPACE = "workspace.py"

OWNERS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys([
        # run folder
        "config.yaml", "environment.json", "run.log", "metrics.json", "failed.json", "word_vectors.vec", "pretrain-model",
        "loop_state.json", "tensorboard-",
        # translation folder
        "report.json", "preview.html", ".failures.jsonl", ".cache", "translations.sqlite", ".incoming-",
        # data directory
        "vectors-src.vec", "vectors-tgt.vec", "mapping.npy", "alignment.json",
        "test.",
    ], (WORKSPACE,)),
    ".tmp": (WORKSPACE, "io.py"),
    ".old": (WORKSPACE, "io.py"),
    "model.safetensors": ("models/serialization.py",),
    "cache.json": ("features/cache.py",),
    "datasets.yaml": ("data/names.py",),
}
"""Each name the scan looks for, and the modules (relative to ``xlingual/``) allowed to spell it."""

EXACT = {"test."}
"""Names that only count as a whole piece of a literal (``test.`` of ``f"test.{dataset}"``, not ``test.txt``)."""
PREFIXES = {name for name in OWNERS if name.endswith("-")}
"""Names that start a longer one (``.incoming-abc``, ``tensorboard-target``)."""


def _pieces(text: str) -> list[str]:
    """The path-like pieces of a literal: runs of name characters (``see {out}/alignment.json.`` -> ``alignment.json.``)."""
    return [piece for piece in re.split(r"[^A-Za-z0-9._-]+", text) if piece]


def names_in(text: str) -> list[str]:
    """The listed names ``text`` spells (as a piece, or at either end of one)."""
    found = []
    for name in OWNERS:
        for piece in _pieces(text):
            if piece == name or (name not in EXACT and (piece.endswith(name) or piece.startswith(name if name in PREFIXES else name + "."))):
                found.append(name)
                break
    return found


def _docstrings(tree: ast.AST) -> set[int]:
    """Ids of string statements (module, class, function and attribute docstrings): they explain, they build nothing."""
    return {id(node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)}


def scan(package: Path) -> list[str]:
    """``file:line: 'name' in '<literal>'`` for each listed name a module spells outside its owners."""
    found = []
    for path in sorted(package.rglob("*.py")):
        module = path.relative_to(package).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        skip = _docstrings(tree)
        literals = sorted((node.lineno, node.col_offset, node.value) for node in ast.walk(tree)
                          if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip)
        for line, _, text in literals:
            for name in names_in(text):
                if module not in OWNERS[name]:
                    found.append(f"{path.relative_to(package.parent).as_posix()}:{line}: {name!r} in {text[:60]!r}")
    return found


def test_no_workspace_name_is_spelt_outside_its_owner():
    found = scan(PACKAGE)
    assert not found, "spell these through xlingual.workspace (or the owning module):\n" + "\n".join(found)


def test_the_scan_finds_a_planted_name_and_passes_docstrings(tmp_path):
    package = tmp_path / "xlingual"
    (package / "train").mkdir(parents=True)
    (package / WORKSPACE).write_text('REPORT = "report.json"\n', encoding="utf-8")
    (package / "train" / "planted.py").write_text(textwrap.dedent('''\
        """Reads report.json and loop_state.json (a docstring: allowed)."""
        from pathlib import Path

        # a comment naming preview.html: allowed
        def report(folder: Path, stage: str) -> Path:
            """The report.json of ``folder``."""
            tmp = folder.with_name(stage + ".tmp")
            return folder / "report.json", tmp, f"{stage}.failures.jsonl", Path(".cache") / "x"

        NOTE = "see alignment.json."
        NOT_A_NAME = "test.txt"
        '''), encoding="utf-8")
    found = scan(package)
    assert [line.split(": ", 1)[0] for line in found] == ["xlingual/train/planted.py:7", "xlingual/train/planted.py:8",
                                                          "xlingual/train/planted.py:8", "xlingual/train/planted.py:8",
                                                          "xlingual/train/planted.py:10"], found
    assert {line.split(": ")[1].split(" in ")[0] for line in found} == {"'.tmp'", "'report.json'", "'.failures.jsonl'", "'.cache'",
                                                                      "'alignment.json'"}


@pytest.mark.parametrize("text, names", [
    ("report.json", ["report.json"]), ("x.report.json", ["report.json"]), ("report.json.bak", ["report.json"]),
    ("myreport.jsonl", []), (".incoming-7f3a", [".incoming-"]), ("tensorboard", []), ("tensorboard-target", ["tensorboard-"]),
    ("test.", ["test."]), ("test.txt", []), (".cache/translations.sqlite", [".cache", "translations.sqlite"]),
    (".tmp.png", [".tmp"]), ("model.tmp", [".tmp"]), ("tokenizer_config.json", []), ("pip install tensorboard", []),
])
def test_names_in_matches_pieces_not_words(text, names):
    assert names_in(text) == names


def test_translation_folder_layout_is_the_documented_one(tmp_path):
    folder = TranslationFolder(tmp_path)
    assert folder.report == tmp_path / REPORT_NAME and folder.preview == tmp_path / PREVIEW_NAME
    assert folder.cache == tmp_path / TRANSLATION_CACHE and folder.cache.parent == folder.work_dir
    assert folder.shards.parent == folder.work_dir and folder.shard_cache("train.00001").parent == folder.shards
    assert folder.output("train") == tmp_path / "train.txt" and folder.output("train", ".jsonl") == tmp_path / "train.jsonl"
    assert folder.failures("train").name.startswith("train.") and folder.failures("train") != folder.output("train", ".jsonl")
    names = {folder.report, folder.preview, folder.output("train"), folder.output("train", ".jsonl"), folder.failures("train")}
    assert len(names) == 5 and all(p.parent == tmp_path for p in names)


def test_stage_state_swaps_through_siblings(tmp_path):
    state = RunFolder(tmp_path).stage("target")
    assert state.root == RunFolder(tmp_path).stage_state("target") and state.loop_state == state.root / LOOP_STATE_NAME
    assert state.incoming == temp_sibling(state.root) and state.previous == old_sibling(state.root)
    assert len({state.root, state.incoming, state.previous}) == 3 and state.incoming.parent == state.previous.parent == state.root.parent
    assert other_test_split("cmner") != "test" and other_test_split("cmner") != other_test_split("twitter2015")


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_atomic_write_dir_replaces_the_whole_folder(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "stale.bin").write_bytes(b"old")
    temp_sibling(target).mkdir()  # left by a killed writer
    (temp_sibling(target) / "half").write_bytes(b"x")
    with atomic_write_dir(target) as tmp:
        assert tmp != target and not any(tmp.iterdir())
        (tmp / "weights").write_bytes(b"new")
        (tmp / "sub").mkdir()
        (tmp / "sub" / "vocab").write_text("a\n")
        assert _tree(target) == {"stale.bin": b"old"}  # readers see the old folder until the block ends
    assert _tree(target) == {"weights": b"new", "sub/vocab": b"a\n"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_atomic_write_dir_leaves_the_old_folder_on_an_error(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "weights").write_bytes(b"old")
    with pytest.raises(OSError, match="disk full"):
        with atomic_write_dir(target) as tmp:
            (tmp / "weights").write_bytes(b"ha")
            raise OSError(28, "disk full")
    assert _tree(target) == {"weights": b"old"} and sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_atomic_write_dir_creates_a_new_folder(tmp_path):
    target = tmp_path / "deep" / "model"
    with atomic_write_dir(target) as tmp:
        (tmp / "a").write_bytes(b"1")
    assert _tree(target) == {"a": b"1"} and sorted(p.name for p in target.parent.iterdir()) == ["model"]


def test_save_png_is_atomic(tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [1, 0])
    path = tmp_path / "chart.png"
    assert save_png(fig, path, dpi=50) == path
    first = path.read_bytes()
    assert first.startswith(b"\x89PNG\r\n\x1a\n")

    class Broken:
        def savefig(self, handle, **kwargs):
            handle.write(b"\x89PNG half")
            raise OSError(28, "disk full")

    with pytest.raises(OSError):
        save_png(Broken(), path, dpi=50)
    assert path.read_bytes() == first and sorted(p.name for p in tmp_path.iterdir()) == ["chart.png"]
    plt.close(fig)
