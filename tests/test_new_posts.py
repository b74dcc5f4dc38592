"""New posts for ``xl predict``: which kind a file is, and reading raw text and token files back exactly."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xlingual.data.new_posts import RAW, TOKENS, detect_input_format, read_raw_posts, read_token_posts
from xlingual.data.sample import Sample
from xlingual.errors import DataFormatError
from xlingual.evaluation.prediction import entity_records

# tokens as datasets hold them: no whitespace of any kind inside (str.split's notion), never empty
token = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\ufeff"), min_size=1, max_size=6).filter(
    lambda t: t.split() == [t])
# U+FEFF opening a file is its byte-order mark, which every reader drops (README: "a BOM is dropped"): no token is one.
char = st.characters(blacklist_categories=("Cs", "Zs", "Zl", "Zp", "Cc"), blacklist_characters="\x00\ufeff").filter(lambda c: c.split() == [c])


def write(tmp_path, text: str):
    path = tmp_path / "posts.txt"
    path.write_text(text, encoding="utf-8")
    return path


@settings(max_examples=60, deadline=None)
@given(posts=st.lists(st.lists(token, min_size=1, max_size=5), min_size=2, max_size=5).filter(lambda ps: max(map(len, ps)) > 1),
       one_char=st.booleans())
def test_token_files_are_detected_and_read_back_exactly(tmp_path_factory, posts, one_char):
    if one_char:  # a character language's token file: one character per line
        posts = [[t[0] for t in post] for post in posts]
    if posts[0][0].startswith(("IMGID:", "WID:", "{")):
        return  # a dataset header
    path = write(tmp_path_factory.mktemp("t"), "\n\n".join("\n".join(post) for post in posts) + "\n")
    assert detect_input_format(path, one_char_tokens=one_char) == TOKENS
    read = read_token_posts(path, "zh" if one_char else "en")
    assert [(s.id, s.tokens) for s in read] == [(f"post-{n}", post) for n, post in enumerate(posts, start=1)]
    assert all(set(s.labels) == {"O"} for s in read)


@settings(max_examples=60, deadline=None)
@given(lines=st.lists(st.lists(token, min_size=1, max_size=6).map(" ".join), min_size=1, max_size=6),
       blanks=st.lists(st.integers(0, 2), min_size=6, max_size=6))
def test_raw_text_with_blank_lines_keeps_one_post_per_line_with_its_line_number(tmp_path_factory, lines, blanks):
    """A post per non-blank line, whatever blank lines sit between; ids are the lines' numbers."""
    if lines[0].startswith(("IMGID:", "WID:", "{")) or ("\t" in "".join(lines)):
        return
    text, numbers, number = "", [], 1
    for line, gap in zip(lines, blanks):
        text += "\n" * gap
        number += gap
        text += line + "\n"
        numbers.append(number)
        number += 1
    path = write(tmp_path_factory.mktemp("r"), text)
    if any(" " in line for line in lines):
        assert detect_input_format(path) == RAW
    read = read_raw_posts(path, str.split, "en")
    assert [(s.id, s.tokens, s.meta["text"]) for s in read] == [(f"line-{n}", line.split(), line) for n, line in zip(numbers, lines)]


@pytest.mark.parametrize(
    "text, one_char, expected",
    [
        ("IMGID:1\nObama\tB-PER\n", False, "twitter"),
        ("WID:1\n马\tB-PER\n", True, "cmner"),
        ('{"id": "1", "tokens": ["a"], "labels": ["O"]}\n', False, "jsonl"),
        ("Obama\tB-PER\nvisits\tO\n\nParis\tB-LOC\n", False, "conll"),
        ("Obama visits Paris\nhello\n", False, RAW),
        ("阿里巴巴的马云\n故宫博物院今天\n", True, RAW),  # Chinese posts have no spaces: a line of several characters is a post
        ("阿里巴巴的马云\n\n故宫\n博物院\n", True, RAW),
        ("马\n云\n\n杭\n州\n", True, TOKENS),
        ("Obama\nvisits\n\nParis\n", False, TOKENS),
        ("Obama\n\nParis\n\nhello\n", False, RAW),  # every post one line
        ("Obama\n", False, RAW),
    ],
)
def test_detection_rule(tmp_path, text, one_char, expected):
    assert detect_input_format(write(tmp_path, text), one_char_tokens=one_char) == expected


@pytest.mark.parametrize(
    "text, one_char",
    [
        ("Obama\nvisits\nParis\n", False),  # one-word posts, or one post's tokens?
        ("马\n云\n", True),
        ("Obama\tB-PER\nvisits\n", False),  # labelled and unlabelled lines mixed
    ],
)
def test_ambiguous_files_are_refused_naming_the_option(tmp_path, text, one_char):
    with pytest.raises(DataFormatError, match="--input-format"):
        detect_input_format(write(tmp_path, text), one_char_tokens=one_char)


def test_token_file_errors_name_the_line(tmp_path):
    with pytest.raises(DataFormatError, match=r"posts.txt:3: a TAB"):
        read_token_posts(write(tmp_path, "a\nb\nc\tO\n"), "en")
    with pytest.raises(DataFormatError, match=r"posts.txt:2: more than one token"):
        read_token_posts(write(tmp_path, "a\nb c\n"), "en")


labels_of = st.lists(st.sampled_from(["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "I-ORG"]), min_size=1, max_size=12)


@settings(max_examples=100, deadline=None)
@given(labels=labels_of, lang=st.sampled_from(["en", "zh"]), data=st.data())
def test_entity_records_are_the_spans_with_their_text(labels, lang, data):
    tokens = data.draw(st.lists(token, min_size=len(labels), max_size=len(labels)))
    sample = Sample("p", tokens, labels, lang=lang)
    records = entity_records(sample)
    assert [(r["type"], r["start"], r["end"]) for r in records] == [(e.type, e.start, e.end) for e in sample.entities()]
    for record in records:
        assert 0 <= record["start"] < record["end"] <= len(tokens)
        assert record["text"] == ("" if lang == "zh" else " ").join(tokens[record["start"]:record["end"]])
