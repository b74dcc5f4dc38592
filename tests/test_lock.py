"""One writer per output folder: a second process is refused at once, a crashed holder's lock is taken over.

The holder is a real second process (a subprocess holding :func:`output_lock`,
as ``xl train`` or ``xl translate`` does while it writes); each command is then
run against the held folder and must exit 2 with the one-line refusal.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from xlingual.cli import app
from xlingual.errors import FolderInUseError
from xlingual.lock import LOCK_NAME, lock_file_for, locks_output, output_lock

ROOT = Path(__file__).resolve().parent.parent
HOLD = """
import os, signal, sys
from xlingual.lock import output_lock
with output_lock(sys.argv[1], folder=sys.argv[2] == "folder"):
    print("locked", flush=True)
    if sys.argv[3] == "crash":
        os.kill(os.getpid(), signal.SIGKILL)  # dies holding it: no clean-up runs
    sys.stdin.read()
"""


@contextmanager
def held_by_another_process(path: Path, folder: bool = True) -> Iterator[int]:
    """A second process holding the lock of ``path`` until the block ends; yields its pid."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path), "folder" if folder else "file", "hold"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield holder.pid
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


def refusal(path: Path, pid: int) -> re.Pattern[str]:
    return re.compile(rf"{re.escape(str(path))} is in use by process {pid} \(started \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{{4}}\)")


def test_a_second_writer_is_refused_naming_the_holder(tmp_path):
    folder = tmp_path / "out"
    with held_by_another_process(folder) as pid:
        with pytest.raises(FolderInUseError) as err:
            with output_lock(folder):
                pass
        assert refusal(folder, pid).fullmatch(str(err.value))
        assert json.loads((folder / LOCK_NAME).read_text())["pid"] == pid
    with output_lock(folder):  # released when the holder ends
        assert json.loads((folder / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert not (folder / LOCK_NAME).exists()


def test_the_lock_of_a_crashed_process_is_taken_over_with_a_message(tmp_path, caplog):
    folder = tmp_path / "out"
    folder.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    crashed = subprocess.run([sys.executable, "-c", HOLD, str(folder), "folder", "crash"], env=env, capture_output=True, text=True)
    assert crashed.returncode == -signal.SIGKILL and crashed.stdout.strip() == "locked"
    stale = json.loads((folder / LOCK_NAME).read_text())
    assert stale["pid"] != os.getpid()  # its record stays behind, but not its lock
    with caplog.at_level(logging.WARNING, logger="xlingual.lock"):
        with output_lock(folder):
            assert json.loads((folder / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert any(f"taking over the lock of process {stale['pid']}" in r.getMessage() for r in caplog.records)
    assert not (folder / LOCK_NAME).exists()


def test_the_lock_is_reentrant_in_one_process_and_leaves_nothing_behind(tmp_path):
    folder = tmp_path / "new"
    with output_lock(folder):
        with output_lock(folder):
            assert (folder / LOCK_NAME).is_file()
        assert (folder / LOCK_NAME).is_file()  # the outer hold goes on
    assert not folder.exists()  # created for the lock and left empty: removed again
    kept = tmp_path / "kept"
    with output_lock(kept):
        (kept / "result.txt").write_text("x")
    assert [p.name for p in kept.iterdir()] == ["result.txt"]


def test_a_decorated_stage_function_holds_the_lock_of_its_output_argument(tmp_path):
    seen = []

    @locks_output("out", folder=False)
    def write(text: str, out: Path) -> None:
        seen.append(lock_file_for(out, folder=False).is_file())
        out.write_text(text)

    write("a", out=tmp_path / "v.vec")
    assert seen == [True] and not lock_file_for(tmp_path / "v.vec", folder=False).exists()
    with held_by_another_process(tmp_path / "v.vec", folder=False) as pid:
        with pytest.raises(FolderInUseError, match=refusal(tmp_path / "v.vec", pid).pattern):
            write("b", tmp_path / "v.vec")
    assert (tmp_path / "v.vec").read_text() == "a"


def _train_args(sample_data_dir: Path, output: Path) -> list[str]:
    return ["train", "--config", "tgt_only", "--model", "acn", "--data-dir", str(sample_data_dir), "--output", str(output),
            "--set", "images=none", "--set", "model.word_vectors=null", "--set", "epochs=1"]


def test_every_writing_command_exits_2_on_a_folder_in_use(tmp_path, sample_data_dir):
    """xl train, xl translate, xl features extract and xl embeddings refuse a held output before writing anything."""
    images = tmp_path / "images"
    images.mkdir()
    (tmp_path / "a.vec").write_text("1 2\nx 0.1 0.2\n")
    corpus = sample_data_dir / "twitter2015" / "train.txt"
    runner = CliRunner()
    commands = {
        "train": (tmp_path / "run", True, lambda out: _train_args(sample_data_dir, out)),
        "translate": (tmp_path / "translated", True, lambda out: [
            "translate", "--src", "en", "--tgt", "zh", "--input", str(corpus), "--output", str(out), "--translator", "no_such_module:make"]),
        "features": (tmp_path / "features", True, lambda out: ["features", "extract", "--images", str(images), "--out", str(out), "--weights", "random"]),
        "embeddings align": (tmp_path / "aligned", True, lambda out: [
            "embeddings", "align", "--src-emb", str(tmp_path / "a.vec"), "--tgt-emb", str(tmp_path / "a.vec"), "--out", str(out), "--dico", "identical"]),
        "embeddings train": (tmp_path / "emb" / "x.en.vec", False, lambda out: [
            "embeddings", "train", "--corpus", str(corpus), "--lang", "en", "--out", str(out)]),
    }
    for name, (output, folder, args) in commands.items():
        with held_by_another_process(output, folder) as pid:
            result = runner.invoke(app, args(output))
            assert result.exit_code == 2, (name, result.output)
            assert refusal(output, pid).search(result.output), (name, result.output)
            assert "Traceback" not in result.output
        written = sorted(p.name for p in output.iterdir()) if folder and output.is_dir() else []
        assert written == [], (name, written)


def test_an_output_that_cannot_be_a_locked_folder_is_a_one_line_error(tmp_path):
    from xlingual.errors import ConfigError

    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ConfigError, match="file.txt: exists and is not a folder"):
        with output_lock(tmp_path / "file.txt"):
            pass
    with pytest.raises(ConfigError, match="cannot create the output folder"):
        with output_lock(tmp_path / "file.txt" / "below"):
            pass
