"""Atomic writes behave like plain writes for everything but atomicity: same content, same permissions."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from xlingual.io import atomic_open, atomic_write_json, atomic_write_text, current_umask


@pytest.fixture
def umask():
    """Set a umask for one test and restore the previous one afterwards."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield lambda mask: os.umask(mask)
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077, 0o002])
def test_atomic_writes_follow_the_umask_like_a_plain_write(tmp_path: Path, umask, mask: int) -> None:
    umask(mask)
    assert current_umask() == mask
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    writers = {
        "text.vec": lambda p: atomic_write_text(p, "x"),
        "obj.json": lambda p: atomic_write_json(p, {"a": 1}),
        "blob.bin": _write_binary,
    }
    for name, write in writers.items():
        write(tmp_path / name)
        assert mode(tmp_path / name) == mode(plain) == 0o666 & ~mask, name


def _write_binary(path: Path) -> None:
    with atomic_open(path, "wb") as handle:
        handle.write(b"x")


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_overwriting_gives_the_umask_mode_not_the_old_one(tmp_path: Path, umask) -> None:
    umask(0o027)
    path = tmp_path / "fasttext.zh.vec"
    path.write_text("old")
    path.chmod(0o600)
    atomic_write_text(path, "new")
    assert path.read_text() == "new" and mode(path) == 0o640


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(path) as handle:
            handle.write("half")
            raise RuntimeError("interrupted")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
