"""An alignment's four files are one output set: written whole or not at all, and never read mixed with another alignment's."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import numpy as np
import pytest

from xlingual.embeddings import Vectors, save_vectors
from xlingual.embeddings import align as align_module
from xlingual.embeddings.align import AlignOptions, align
from xlingual.embeddings.paths import find_aligned_pair
from xlingual.errors import OutputSetError
from xlingual.output_set import MANIFEST_KEY
from xlingual.stage_inputs import ensure_word_vectors
from xlingual.workspace import STAGING_PREFIX, AlignedPaths, DataDir

OPTIONS = AlignOptions(refinement=0)


def _vectors(folder: Path, seed: int) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(60)]
    src = save_vectors(folder / f"src{seed}.vec", Vectors(words, rng.normal(size=(60, 6)).astype(np.float32)))
    tgt = save_vectors(folder / f"tgt{seed}.vec", Vectors(words, rng.normal(size=(60, 6)).astype(np.float32)))
    return src, tgt


def _aligned(tmp_path: Path, seed: int) -> AlignedPaths:
    paths = DataDir(tmp_path / "data").aligned("en", "de")
    align(*_vectors(tmp_path, seed), paths.root, dico="identical", options=OPTIONS)
    return paths


def _contents(paths: AlignedPaths) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(paths.root.iterdir())}


def test_alignment_json_lists_the_other_three_files_and_no_staging_is_left(tmp_path) -> None:
    paths = _aligned(tmp_path, 1)
    listed = json.loads(paths.summary.read_text(encoding="utf-8"))[MANIFEST_KEY]
    assert sorted(listed) == sorted(p.name for p in (paths.src_vectors, paths.tgt_vectors, paths.mapping))
    assert {name: entry["bytes"] for name, entry in listed.items()} == {name: (paths.root / name).stat().st_size for name in listed}
    assert not list(paths.root.glob(f"{STAGING_PREFIX}*")) and not list(paths.root.glob("*.tmp"))


@pytest.mark.parametrize("fail_at", [1, 2])
def test_a_write_that_fails_leaves_the_earlier_alignment_whole(tmp_path, monkeypatch, fail_at) -> None:
    paths = _aligned(tmp_path, 1)
    before = _contents(paths)
    real_save, calls = align_module.save_vectors, []

    def full_disk(path, vectors):
        calls.append(path)
        if len(calls) == fail_at:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_save(path, vectors)

    monkeypatch.setattr(align_module, "save_vectors", full_disk)
    with pytest.raises(OSError, match="No space left"):
        align(*_vectors(tmp_path, 2), paths.root, dico="identical", options=OPTIONS)
    assert _contents(paths) == before  # the old set, byte for byte, and nothing beside it
    monkeypatch.undo()
    assert find_aligned_pair(tmp_path / "data", "en", "de") == {"en": paths.src_vectors, "de": paths.tgt_vectors}


def test_vectors_of_two_alignments_in_one_folder_are_refused(tmp_path) -> None:
    other = _aligned(tmp_path / "other", 2)
    paths = _aligned(tmp_path, 1)
    # a file of another size: the quick size check of the input check refuses it
    paths.tgt_vectors.write_text(paths.tgt_vectors.read_text(encoding="utf-8") + "w60 1 2 3 4 5 6\n", encoding="utf-8")
    with pytest.raises(OutputSetError, match=r"vectors-tgt\.vec: \d+ bytes, alignment\.json says \d+ .*xl embeddings align"):
        find_aligned_pair(tmp_path / "data", "en", "de")
    # the same size, other values: the run that reads them checks digests
    paths = _aligned(tmp_path, 1)
    same_size = bytearray(paths.src_vectors.read_bytes())
    same_size[-2:-1] = b"9" if same_size[-2:-1] != b"9" else b"8"
    paths.src_vectors.write_bytes(bytes(same_size))
    assert find_aligned_pair(tmp_path / "data", "en", "de") is not None
    with pytest.raises(OutputSetError, match=r"vectors-src\.vec: its SHA-256 differs from the one alignment\.json records"):
        ensure_word_vectors("auto", tmp_path / "data", "en", "de", target_only=False, merged_out=tmp_path / "merged.vec")
    assert other.summary.is_file()


def test_an_alignment_from_before_manifests_is_read_as_before(tmp_path) -> None:
    paths = _aligned(tmp_path, 1)
    summary = json.loads(paths.summary.read_text(encoding="utf-8"))
    del summary[MANIFEST_KEY]
    paths.summary.write_text(json.dumps(summary), encoding="utf-8")
    assert find_aligned_pair(tmp_path / "data", "en", "de") == {"en": paths.src_vectors, "de": paths.tgt_vectors}
    assert ensure_word_vectors("auto", tmp_path / "data", "en", "de", target_only=True, merged_out=tmp_path / "m.vec") == str(paths.tgt_vectors)
