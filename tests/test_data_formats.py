"""Readers and writers on the real files and on the quirks listed in the datasets' notes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xlingual.data.formats import detect_format, format_jsonl, format_text, parse_file, read_samples, write_samples
from xlingual.data.labels import BioPolicy, count_entities
from xlingual.data.sample import Sample
from xlingual.errors import DataValidationError

REAL_FILES = [
    ("twitter2015/train.txt", "twitter"), ("twitter2015/valid.txt", "twitter"), ("twitter2015/test.txt", "twitter"),
    ("twitter2017/train.txt", "twitter"), ("twitter2017/valid.txt", "twitter"), ("twitter2017/test.txt", "twitter"),
    ("cmner/text/train.txt", "cmner"), ("cmner/text/dev.txt", "cmner"), ("cmner/text/test.txt", "cmner"),
]


def normalise(text: str) -> str:
    """The documented normalisation: LF line endings, no trailing blank lines, one final newline."""
    return text.replace("\r\n", "\n").rstrip("\n") + "\n"


@pytest.mark.parametrize("relpath,fmt", REAL_FILES)
def test_real_file_round_trips(shared_data: Path, relpath: str, fmt: str) -> None:
    path = shared_data / relpath
    original = path.read_bytes().decode("utf-8")
    assert detect_format(path) == fmt
    result = parse_file(path, bio=BioPolicy.keep)
    assert result.error_count == 0
    assert format_text(result.samples, fmt, result.type_spellings) == normalise(original)


@pytest.mark.parametrize("relpath,fmt", REAL_FILES[:3] + REAL_FILES[6:])
def test_real_file_round_trips_through_jsonl(shared_data: Path, tmp_path: Path, relpath: str, fmt: str) -> None:
    samples = read_samples(shared_data / relpath, bio=BioPolicy.keep)
    write_samples(tmp_path / "x.jsonl", samples)
    again = read_samples(tmp_path / "x.jsonl", bio=BioPolicy.keep)
    assert again == samples


def test_twitter_other_is_read_as_misc_and_written_back_as_other(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("IMGID:12\nGame\tB-OTHER\nof\tI-OTHER\nThrones\tI-OTHER\nrocks\tO\n")
    (sample,) = read_samples(path)
    assert sample.labels == ["B-MISC", "I-MISC", "I-MISC", "O"]
    assert sample.lang == "en" and sample.images == ["12.jpg"]
    assert format_text([sample], "twitter") == path.read_text()
    # the same sample written as CMNER keeps MISC
    assert "B-MISC" in format_text([sample], "cmner")


def test_twitter2017_spells_misc_and_reads_the_same(shared_data: Path, tmp_path: Path) -> None:
    result = parse_file(shared_data / "twitter2017" / "valid.txt")
    assert result.type_spellings["MISC"] == "MISC"
    assert parse_file(shared_data / "twitter2015" / "valid.txt").type_spellings["MISC"] == "OTHER"
    mixed = tmp_path / "mixed.txt"
    mixed.write_text("IMGID:1\na\tB-OTHER\nb\tB-MISC\n")
    with pytest.raises(DataValidationError, match="mixed.txt:3: label 'B-MISC' mixes spellings"):
        read_samples(mixed)


def test_cmner_label_misc_and_twitter_label_other_are_one_type(tmp_path: Path) -> None:
    tw = tmp_path / "t.txt"
    tw.write_text("IMGID:1\nX\tB-OTHER\n")
    cm = tmp_path / "c.txt"
    cm.write_text("WID:Labc\n某\tB-MISC\n")
    assert read_samples(tw)[0].labels == read_samples(cm)[0].labels == ["B-MISC"]
    bad = tmp_path / "bad.txt"
    bad.write_text("WID:Labc\nX\tB-OTHER\n")  # OTHER is not a CMNER label
    with pytest.raises(DataValidationError, match=r"bad.txt:2: label 'B-OTHER' is not in the cmner schema"):
        read_samples(bad)


def test_orphan_i_tags_in_twitter2015(shared_data: Path) -> None:
    expected = {"train.txt": 186, "valid.txt": 53, "test.txt": 135}
    for name, orphans in expected.items():
        path = shared_data / "twitter2015" / name
        repaired = parse_file(path, bio="repair")
        kept = parse_file(path, bio="keep")
        assert repaired.repaired_orphans == orphans
        assert kept.kept_orphans == orphans
        # repairing I- to B- never changes the conlleval-style entity count
        assert count_entities([s.labels for s in repaired.samples]) == count_entities([s.labels for s in kept.samples])
        rejected = parse_file(path, bio="reject")
        assert rejected.error_count == orphans


def test_orphan_repair_is_counted_and_reject_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "o.txt"
    path.write_text("IMGID:5\nhttp://t.co/x\tO\nWater\tI-OTHER\n")
    assert read_samples(path)[0].labels == ["O", "B-MISC"]
    with pytest.raises(DataValidationError, match=r"o.txt:3: 'I-MISC' follows 'O'"):
        read_samples(path, bio="reject")


def test_twitter2015_valid_keeps_the_no_break_space_token(shared_data: Path) -> None:
    path = shared_data / "twitter2015" / "valid.txt"
    line = path.read_text(encoding="utf-8").split("\n")[9657]
    assert line == "\u00a0\tO"
    tokens = [t for s in read_samples(path) for t in s.tokens]
    assert "\u00a0" in tokens


def test_twitter2015_test_keeps_the_left_to_right_mark(shared_data: Path) -> None:
    tokens = [t for s in read_samples(shared_data / "twitter2015" / "test.txt") for t in s.tokens]
    assert "#\u200edarmageddon" in tokens


@pytest.mark.parametrize("split", ["dev", "test"])
def test_cmner_last_line_without_newline_keeps_its_label(shared_data: Path, split: str) -> None:
    path = shared_data / "cmner" / "text" / f"{split}.txt"
    raw = path.read_bytes()
    assert not raw.endswith(b"\n") and b"\r\n" in raw  # the quirk is really there
    last = read_samples(path)[-1]
    assert last.tokens[-1] == "#" and last.labels[-1] == "O"


def test_cmner_is_one_character_per_token(shared_data: Path) -> None:
    samples = read_samples(shared_data / "cmner" / "text" / "dev.txt")
    assert all(len(tok) == 1 for s in samples for tok in s.tokens)
    assert all(s.lang == "zh" and s.images == [] for s in samples)


def test_crlf_and_bom_are_read(tmp_path: Path) -> None:
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeffWID:Labc12345\r\n北\tB-LOC\r\n京\tI-LOC \r\n\r\n".encode("utf-8"))
    (sample,) = read_samples(path)
    assert sample.id == "Labc12345" and sample.tokens == ["北", "京"] and sample.labels == ["B-LOC", "I-LOC"]


def test_token_with_tab_is_split_on_the_last_tab(tmp_path: Path) -> None:
    path = tmp_path / "tab.txt"
    path.write_text("IMGID:1\na\tb\tO\n")
    assert read_samples(path)[0].tokens == ["a\tb"]


def test_jsonl_round_trip_keeps_provenance(tmp_path: Path) -> None:
    sample = Sample("7", ["北", "京"], ["B-LOC", "I-LOC"], images=["7_a.jpg"], lang="zh",
                    meta={"source_id": "99", "raw_translation": "北京", "strategy": "placeholder"})
    path = tmp_path / "s.jsonl"
    write_samples(path, [sample])
    assert detect_format(path) == "jsonl"
    assert read_samples(path) == [sample]
    assert json.loads(format_jsonl([sample]))["meta"]["source_id"] == "99"


def test_write_is_atomic_and_keeps_the_old_file_on_error(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    path.write_text("old\n")

    def broken():
        yield Sample("1", ["a"], ["O"])
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        write_samples(path, broken(), "twitter")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


# ---------------------------------------------------------------- the real files' quirks, on generated files


def quirky_files(folder: Path) -> dict[str, tuple[Path, str, int]]:
    """Generated files carrying each quirk of the real nine: name -> (path, format, orphan I- tags written).

    Twitter2015-style: ``OTHER``, orphan ``I-`` tags, a no-break-space token and a
    left-to-right mark inside a hashtag; Twitter2017-style: ``MISC``; CMNER-style:
    CRLF line endings and no newline after the last label.
    """
    from xlingual.testing.synthetic import generated_tweets, generated_weibo_posts

    tweets = generated_tweets(40, seed=5)
    orphans = 0
    for sample in tweets[::4]:  # turn the first B- of every fourth post into an orphan I-
        for i, label in enumerate(sample.labels):
            if label.startswith("B-") and (i == 0 or sample.labels[i - 1] == "O"):
                sample.labels[i] = "I-" + label[2:]
                orphans += 1
                break
    tweets[1].tokens[2], tweets[1].labels[2] = "\u00a0", "O"
    tweets[2].tokens[0], tweets[2].labels[0] = "#\u200edarmageddon", "O"
    assert any("MISC" in label for s in tweets for label in s.labels)
    files = {
        "twitter2015": (folder / "t15.txt", "twitter", format_text(tweets, "twitter")),
        "twitter2017": (folder / "t17.txt", "twitter", format_text(tweets, "twitter", {"MISC": "MISC"})),
    }
    posts = generated_weibo_posts(30, seed=5)
    posts[-1].tokens[-1], posts[-1].labels[-1] = "#", "O"
    cmner = format_text(posts, "cmner").rstrip("\n").replace("\n", "\r\n")
    files["cmner"] = (folder / "c.txt", "cmner", cmner)
    result = {}
    for name, (path, fmt, text) in files.items():
        path.write_bytes(text.encode("utf-8"))
        result[name] = (path, fmt, orphans if fmt == "twitter" else 0)
    return result


@pytest.mark.parametrize("name", ["twitter2015", "twitter2017", "cmner"])
def test_generated_quirky_file_round_trips(tmp_path: Path, name: str) -> None:
    path, fmt, _ = quirky_files(tmp_path)[name]
    original = path.read_bytes().decode("utf-8")
    assert detect_format(path) == fmt
    result = parse_file(path, bio=BioPolicy.keep)
    assert result.error_count == 0
    assert format_text(result.samples, fmt, result.type_spellings) == normalise(original)
    write_samples(tmp_path / "x.jsonl", result.samples)
    assert read_samples(tmp_path / "x.jsonl", bio=BioPolicy.keep) == result.samples


def test_generated_files_keep_spellings_orphans_and_odd_tokens(tmp_path: Path) -> None:
    files = quirky_files(tmp_path)
    assert parse_file(files["twitter2015"][0]).type_spellings["MISC"] == "OTHER"
    assert parse_file(files["twitter2017"][0]).type_spellings["MISC"] == "MISC"
    assert read_samples(files["twitter2015"][0]) == read_samples(files["twitter2017"][0])
    path, _, orphans = files["twitter2015"]
    assert orphans >= 5
    repaired, kept = parse_file(path, bio="repair"), parse_file(path, bio="keep")
    assert repaired.repaired_orphans == orphans and kept.kept_orphans == orphans
    assert count_entities([s.labels for s in repaired.samples]) == count_entities([s.labels for s in kept.samples])
    assert parse_file(path, bio="reject").error_count == orphans
    tokens = [t for s in kept.samples for t in s.tokens]
    assert "\u00a0" in tokens and "#\u200edarmageddon" in tokens
    cmner_path = files["cmner"][0]
    raw = cmner_path.read_bytes()
    assert not raw.endswith(b"\n") and b"\r\n" in raw
    samples = read_samples(cmner_path)
    assert samples[-1].tokens[-1] == "#" and samples[-1].labels[-1] == "O"
    assert all(len(tok) == 1 for s in samples for tok in s.tokens)
    assert all(s.lang == "zh" and s.images == [] for s in samples)


@pytest.mark.parametrize("content, line_no, ending", [
    ("IMGID:1\ntoken\t" + "X" * 5_000_000 + "\nword\tO\n", 2, "' is not in the twitter schema"),
    ("IMGID:" + "7" * 5_000_000 + "\nword\tO\n\nIMGID:" + "7" * 5_000_000 + "\nword\tO\n", 4, "' (first at line 1)"),
])
def test_a_5mb_bad_line_is_quoted_in_a_few_hundred_characters(tmp_path: Path, content: str, line_no: int, ending: str) -> None:
    from typer.testing import CliRunner

    from xlingual.cli import app
    from xlingual.errors import MAX_MESSAGE_CHARS

    path = tmp_path / "big.txt"
    path.write_text(content, encoding="utf-8")
    result = CliRunner().invoke(app, ["data", "stats", str(path)])
    assert result.exit_code == 2, result.output[:500]
    line = result.output.strip()
    assert "\n" not in line and len(line) < MAX_MESSAGE_CHARS + 200, len(result.output)
    assert line.startswith(f"error: {path}:{line_no}: ") and "characters cut" in line, line
    assert ending in line[-200:], line[-200:]
