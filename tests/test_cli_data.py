"""`xl data` end to end: every bad input is one line with file:line and exit status 2."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from xlingual.cli import app

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


BAD_INPUTS = {
    "empty": (b"", r"empty.txt: file is empty"),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", r"binary.txt:3: binary content"),
    "latin1": ("IMGID:1\ncaf\xe9\tO\n".encode("latin-1"), r"latin1.txt:2: not valid UTF-8"),
    "no_tab": (b"IMGID:1\nhello O\n", r"no_tab.txt:2: no TAB between token and label"),
    "bad_label": (b"IMGID:1\nhello\tB-FOO\n", r"bad_label.txt:2: label 'B-FOO' is not in the twitter schema"),
    "no_header": (b"IMGID:1\nhello\tO\n\nworld\tO\n", r"no_header.txt:4: token line before any 'IMGID:' header"),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_exits_2_with_file_and_line(tmp_path: Path, name: str) -> None:
    content, message = BAD_INPUTS[name]
    path = tmp_path / f"{name}.txt"
    path.write_bytes(content)
    fmt = ["--format", "twitter"] if name in ("empty", "binary", "latin1") else []
    for command in (["data", "validate"], ["data", "stats"]):
        result = run(*command, str(path), *fmt)
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        assert re.search(message, result.output), result.output


def test_missing_path_and_directory_exit_2(tmp_path: Path) -> None:
    result = run("data", "validate", str(tmp_path / "nope.txt"))
    assert result.exit_code == 2 and "nope.txt: no such file" in result.output
    result = run("data", "stats", str(tmp_path))
    assert result.exit_code == 2 and f"{tmp_path}: no dataset files (*.txt) in this folder" in result.output
    (tmp_path / "notes.md").write_text("not a dataset\n")
    result = run("data", "validate", str(tmp_path))
    assert result.exit_code == 2 and "no dataset files" in result.output and "Traceback" not in result.output


def test_a_folder_stands_for_its_dataset_files(sample_data_dir: Path) -> None:
    """``xl data stats DIR`` and ``xl data validate DIR`` read the folder's *.txt files, as ``xl data compare`` does."""
    folder = sample_data_dir / "twitter2015"
    files = sorted(folder.glob("*.txt"))
    assert len(files) == 3
    by_folder = run("data", "stats", str(folder), "--json")
    by_files = run("data", "stats", *map(str, files), "--json")
    assert by_folder.exit_code == 0 and json.loads(by_folder.output) == json.loads(by_files.output)
    mixed = run("data", "stats", str(files[0]), str(folder), "--json")
    assert [s["name"] for s in json.loads(mixed.output)["splits"]] == [files[0].stem] + [f.stem for f in files]
    result = run("data", "validate", str(folder))
    assert result.exit_code == 0 and all(str(f) in result.output for f in files), result.output


def test_validate_lists_all_errors(tmp_path: Path) -> None:
    path = tmp_path / "many.txt"
    path.write_text("IMGID:1\n" + "".join(f"w{i}\tB-BAD\n" for i in range(30)))
    result = run("data", "validate", str(path))
    assert result.exit_code == 2
    assert "many.txt:2:" in result.output and "many.txt:21:" in result.output
    assert "10 more errors" in result.output


def test_validate_ok_summary_and_orphan_policy(shared_data: Path) -> None:
    path = shared_data / "twitter2015" / "valid.txt"
    result = run("data", "validate", str(path))
    assert result.exit_code == 0
    assert "ok (twitter, 1000 posts" in result.output and "53 orphan I- tags repaired" in result.output
    result = run("data", "validate", str(path), "--bio", "reject")
    assert result.exit_code == 2 and "orphan I- tag" in result.output


def test_stats_prints_table_1_for_cmner(shared_data: Path) -> None:
    files = [str(shared_data / "cmner" / "text" / f"{s}.txt") for s in ("train", "dev", "test")]
    result = run("data", "stats", *files)
    assert result.exit_code == 0, result.output
    per_line = next(line for line in result.output.splitlines() if "PER" in line)
    assert "3,814" in per_line and "1,313" in per_line and "1,287" in per_line
    result = run("data", "stats", *files, "--json")
    splits = json.loads(result.output)["splits"]
    assert [s["entities"]["ORG"] for s in splits] == [6045, 1942, 1863]
    assert [s["total_entities"] for s in splits] == [16373, 5395, 5277]


def _count_by_hand(path: Path) -> dict:
    """Posts, tokens and entities (B- tags; Twitter's OTHER is MISC) of a BIO file the sample ships, counted directly."""
    posts, tokens, empty_posts = 0, 0, 0
    entities = {"PER": 0, "LOC": 0, "ORG": 0, "MISC": 0}
    in_post_entities = None
    for line in path.read_text(encoding="utf-8").splitlines() + [""]:
        if line.startswith(("IMGID:", "WID:")):
            posts += 1
            in_post_entities = 0
        elif line.strip():
            tokens += 1
            label = line.split("\t")[1]
            if label.startswith("B-"):
                entities["MISC" if label[2:] == "OTHER" else label[2:]] += 1
                in_post_entities += 1
        elif in_post_entities is not None:
            empty_posts += in_post_entities == 0
            in_post_entities = None
    return {"posts": posts, "tokens": tokens, "entities": entities, "posts_without_entities": empty_posts}


def test_stats_on_the_embedded_sample(sample_data_dir: Path) -> None:
    files = sorted(sample_data_dir.rglob("*.txt"))
    assert len(files) == 6  # three splits of each dataset, in both formats
    result = run("data", "stats", *map(str, files), "--json")
    assert result.exit_code == 0, result.output
    splits = json.loads(result.output)["splits"]
    assert [s["name"] for s in splits] == [f.stem for f in files]
    for path, split in zip(files, splits):
        expected = _count_by_hand(path)
        assert {key: split[key] for key in expected} == expected, path
        assert split["total_entities"] == sum(expected["entities"].values())
    totals = {etype: sum(s["entities"][etype] for s in splits) for etype in ("PER", "LOC", "ORG", "MISC")}
    assert min(totals.values()) > 0, totals  # the sample has entities of all four types


def test_download_without_network_exits_2_quickly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import urllib.error

    from xlingual.data import download

    monkeypatch.setattr(download.urllib.request, "urlopen", lambda *a, **k: (_ for _ in ()).throw(urllib.error.URLError("offline")))
    result = run("data", "download", "twitter2015", "--to", str(tmp_path))
    assert result.exit_code == 2 and "cannot download" in result.output
    result = run("data", "download", "imagenet", "--to", str(tmp_path))
    assert result.exit_code == 2 and "'imagenet' is not one of" in result.output and "twitter2015" in result.output


def test_console_script_has_no_traceback_on_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_text("IMGID:1\nx\tB-FOO\n")
    proc = subprocess.run([sys.executable, "-m", "xlingual", "data", "validate", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[0] == f"{path}:2: label 'B-FOO' is not in the twitter schema (O, B-PER, I-PER, B-LOC, I-LOC, B-ORG, I-ORG, B-OTHER, I-OTHER)"
    assert "Traceback" not in proc.stderr


TOP_LEVEL_COMMANDS = ("translate", "train", "evaluate", "experiment", "report", "predict", "demo", "data", "embeddings", "features")


def _listed_commands(output: str) -> set[str]:
    """Command names in the first column of a help screen's command panel."""
    return {m.group(1) for m in re.finditer(r"^[│|]\s+([a-z][a-z-]*)\s{2,}", output, flags=re.MULTILINE)}


def test_help_lists_commands() -> None:
    result = run("--help")
    assert result.exit_code == 0, result.output
    assert set(TOP_LEVEL_COMMANDS) <= _listed_commands(result.output), result.output
    result = run("data", "--help")
    assert result.exit_code == 0 and {"validate", "stats", "download"} <= _listed_commands(result.output), result.output
    result = run("data", "validate", "--help")
    assert result.exit_code == 0
    examples = result.output.split("Examples", 1)[1]
    assert re.search(r"^\s*xl data validate \S", examples, flags=re.MULTILINE), result.output


def test_validate_and_stats_on_generated_files(tmp_path: Path, generated_data) -> None:
    """The two checks above on generated files whose orphans and entity counts are known."""
    from xlingual.data.formats import write_samples
    from xlingual.testing.synthetic import generated_tweets

    tweets = generated_tweets(25, seed=3)
    orphans = 0
    for sample in tweets[::3]:
        if not sample.entities() or sample.labels[0].startswith("B-"):
            continue
        first = next(i for i, label in enumerate(sample.labels) if label.startswith("B-"))
        if sample.labels[first - 1] == "O":
            sample.labels[first] = "I-" + sample.labels[first][2:]
            orphans += 1
    assert orphans >= 3
    path = tmp_path / "valid.txt"
    write_samples(path, tweets, "twitter")
    result = run("data", "validate", str(path))
    assert result.exit_code == 0
    assert "ok (twitter, 25 posts" in result.output and f"{orphans} orphan I- tags repaired" in result.output
    result = run("data", "validate", str(path), "--bio", "reject")
    assert result.exit_code == 2 and "orphan I- tag" in result.output

    splits = ("train", "dev", "test")
    files = [str(generated_data.root / "cmner" / "text" / f"{s}.txt") for s in splits]
    written = [generated_data.weibo[s] for s in splits]
    counts = [{t: sum(1 for s in posts for span in s.entities() if span.type == t) for t in ("PER", "ORG")} for posts in written]
    result = run("data", "stats", *files)
    assert result.exit_code == 0, result.output
    per_line = next(line for line in result.output.splitlines() if "PER" in line)
    assert all(f"{c['PER']:,}" in per_line for c in counts)
    splits_json = json.loads(run("data", "stats", *files, "--json").output)["splits"]
    assert [s["entities"]["ORG"] for s in splits_json] == [c["ORG"] for c in counts]
    assert [s["total_entities"] for s in splits_json] == [sum(len(p.entities()) for p in posts) for posts in written]


@pytest.mark.parametrize("fmt", ["twitter", "cmner", "conll"])
def test_repair_warning_advises_a_command_that_lists_each_orphan(tmp_path: Path, caplog, fmt: str) -> None:
    """Reading for translation, training or prediction repairs orphan I- tags and says how to see them:
    the advised command must exist and list every repaired tag with its file:line."""
    import shlex

    from xlingual.data.formats import read_samples, write_samples
    from xlingual.data.sample import Sample

    samples = [Sample("p1", ["a", "b", "c"], ["O", "I-PER", "O"], lang="zh" if fmt == "cmner" else "en"),
               Sample("p2", ["d", "e"], ["I-LOC", "I-LOC"], lang="zh" if fmt == "cmner" else "en")]
    path = tmp_path / "with space" / "in.txt"
    write_samples(path, samples, fmt)
    with caplog.at_level("WARNING", logger="xlingual"):
        read_samples(path, fmt)
    warning = next(r.getMessage() for r in caplog.records if "orphan" in r.getMessage())
    assert "--bio keep" not in warning
    command = shlex.split(re.search(r"\((xl .*) lists each one\)", warning).group(1))
    assert command[0] == "xl"
    result = run(*command[1:])
    assert result.exit_code == 2, result.output
    expected = (2, 5) if fmt == "conll" else (3, 7)  # 'b' of p1 and 'd' of p2 (p2's second I-LOC continues the first)
    listed = {re.match(r"(.*):(\d+): ", line).groups() for line in result.output.splitlines() if "orphan" in line}
    assert listed == {(str(path), str(line)) for line in expected}


def test_translate_and_feature_inputs_take_a_folder(sample_data_dir: Path, tmp_path: Path) -> None:
    from xlingual.features.extract import collect_samples
    from xlingual.projection.corpus import read_input_files

    folder = sample_data_dir / "twitter2015"
    files = sorted(folder.glob("*.txt"))
    by_folder, by_files = read_input_files([folder]), read_input_files(files)
    assert [i.name for i in by_folder] == [f.stem for f in files] == [i.name for i in by_files]
    assert [len(i.samples) for i in by_folder] == [len(i.samples) for i in by_files] and all(i.samples for i in by_folder)
    images = tmp_path / "images"
    images.mkdir()
    assert [s.id for s in collect_samples([folder], images)] == [s.id for s in collect_samples(files, images)]
