"""Datasets a user declares in ``datasets.yaml``: the registry, reading with open or mapped labels, ``xl data list/validate``.

Every bad declaration is one line ``FILE:LINE: message`` and exit status 2; the
line is that of the key at fault, computed here from the text, not hard-coded.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from xlingual.cli import app
from xlingual.data.datasets import DATASETS, LabelKind, available_datasets, get_dataset, load_split
from xlingual.data.formats import format_text, parse_file, read_samples, write_samples
from xlingual.data.labels import OPEN_SCHEMA, OPEN_TYPE_PATTERN
from xlingual.errors import ConfigError, DataValidationError
from xlingual.workspace import DataDir

runner = CliRunner()

THE_FORM = """\
datasets:
  mine:
    language: en
    format: conll
    splits: {train: mine/tr.conll, dev: mine/de.conll, test: mine/te.conll}
    images: mine/images      # optional
    image_names: stem        # stem | prefix (id + "_")
    labels: open             # or a map into PER/LOC/ORG/MISC, e.g. {person: PER, product: MISC}
"""

POSTS = {
    "tr": [[("New", "B-PRODUCT"), ("iPhone", "I-PRODUCT"), ("by", "O"), ("Apple", "B-corporation")], [("hi", "O"), ("Bob", "B-person")]],
    "de": [[("Paris", "B-location"), ("!", "O")]],
    "te": [[("Ann", "B-person")], [("the", "O"), ("Louvre", "B-creative-work")], [("ok", "O")]],
}


def conll(posts: list[list[tuple[str, str]]]) -> str:
    return "\n\n".join("\n".join(f"{tok}\t{lab}" for tok, lab in post) for post in posts) + "\n"


def make_data_dir(root: Path, declaration: str = THE_FORM, images: tuple[str, ...] = ("train-1.jpg", "train-2.jpg", "test-3.png")) -> Path:
    (root / "mine" / "images").mkdir(parents=True)
    for stem, posts in POSTS.items():
        (root / "mine" / f"{stem}.conll").write_text(conll(posts), encoding="utf-8")
    for name in images:
        (root / "mine" / "images" / name).write_bytes(b"\xff\xd8")
    (root / "datasets.yaml").write_text(declaration, encoding="utf-8")
    return root


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), start=1) if needle in line)


# -- the exact form of the issue, end to end ---------------------------------------------------------

def test_the_declared_form_reads_through_load_split_with_open_labels_ids_and_images(tmp_path: Path) -> None:
    data = make_data_dir(tmp_path)
    spec = get_dataset("mine", data)
    assert (spec.name, spec.lang, spec.format, spec.label_kind, spec.open_labels, spec.entity_types) == ("mine", "en", "conll", LabelKind.OPEN, True, None)
    train = load_split(data, "mine", "train")
    assert [s.id for s in train] == ["train-1", "train-2"]
    assert [s.tokens for s in train] == [[t for t, _ in post] for post in POSTS["tr"]]
    assert [s.labels for s in train] == [[lab for _, lab in post] for post in POSTS["tr"]]  # B-PRODUCT stays B-PRODUCT
    assert {s.lang for s in train} == {"en"}
    assert [s.images for s in train] == [["train-1.jpg"], ["train-2.jpg"]]
    test = load_split(data, "mine", "test")
    assert [s.images for s in test] == [[], [], ["test-3.png"]] and test[1].labels == ["O", "B-creative-work"]
    assert [s.id for s in load_split(data, "mine", "test", with_images=False)] == ["test-1", "test-2", "test-3"]  # stable ids


def test_xl_data_list_shows_builtins_and_the_declared_dataset_with_what_is_on_disk(tmp_path: Path) -> None:
    data = make_data_dir(tmp_path)
    (data / "mine" / "de.conll").unlink()
    result = runner.invoke(app, ["data", "list", "--data-dir", str(data), "--json"])
    assert result.exit_code == 0, result.output
    listed = {d["name"]: d for d in json.loads(result.output)["datasets"]}
    assert list(listed)[: len(DATASETS)] == list(DATASETS)
    mine = listed["mine"]
    assert (mine["language"], mine["format"], mine["labels"]) == ("en", "conll", "open")
    assert {split: v["posts"] for split, v in mine["splits"].items()} == {"train": 2, "dev": None, "test": 3}
    assert mine["images"]["count"] == 3 and mine["source"] == f"{data / 'datasets.yaml'}:2"
    assert listed["twitter2015"]["images"]["count"] is None and listed["twitter2015"]["splits"]["train"]["posts"] is None
    table = runner.invoke(app, ["data", "list", "--data-dir", str(data)], env={"COLUMNS": "300"})
    row = next(line for line in table.output.splitlines() if "mine" in line)
    assert "open" in row and "missing" in row and "2 posts" in row


def test_xl_data_validate_a_dataset_name_checks_every_split_with_its_rule(tmp_path: Path) -> None:
    data = make_data_dir(tmp_path)
    result = runner.invoke(app, ["data", "validate", "mine", "--data-dir", str(data)])
    assert result.exit_code == 0, result.output
    assert [line.split(": ok")[0] for line in result.output.splitlines()] == [str(data / "mine" / f"{s}.conll") for s in ("tr", "de", "te")]
    (data / "mine" / "de.conll").write_text("Paris\tB-location\nx\tB-bad type\n", encoding="utf-8")
    result = runner.invoke(app, ["data", "validate", "mine", "--data-dir", str(data)])
    assert result.exit_code == 2 and f"{data / 'mine' / 'de.conll'}:2: label 'B-bad type'" in result.output


def test_a_label_map_reads_into_canonical_types_writes_the_file_spelling_and_names_an_unmapped_type(tmp_path: Path) -> None:
    data = make_data_dir(tmp_path, THE_FORM.replace("labels: open ", "labels: {PRODUCT: MISC, corporation: ORG, person: PER, location: LOC, creative-work: MISC}"))
    spec = get_dataset("mine", data)
    assert spec.label_kind is LabelKind.MAPPED and not spec.open_labels and spec.entity_types == ("MISC", "ORG", "PER", "LOC")
    train = load_split(data, "mine", "train")
    assert train[0].labels == ["B-MISC", "I-MISC", "O", "B-ORG"]
    out = tmp_path / "out.conll"
    write_samples(out, train, "conll", schema=spec.schema)
    assert out.read_text(encoding="utf-8") == (data / "mine" / "tr.conll").read_text(encoding="utf-8")
    (data / "mine" / "te.conll").write_text("a\tO\n\nb\tB-animal\n", encoding="utf-8")
    with pytest.raises(DataValidationError, match=re.escape(f"{data / 'mine' / 'te.conll'}:3: label 'B-animal' is not in the mine label map")):
        load_split(data, "mine", "test")
    result = runner.invoke(app, ["data", "validate", "mine", "--data-dir", str(data)])
    assert result.exit_code == 2 and "te.conll:3: label 'B-animal'" in result.output


def test_a_missing_split_is_one_line_naming_the_dataset_and_split(tmp_path: Path) -> None:
    data = make_data_dir(tmp_path, THE_FORM.replace("dev: mine/de.conll, ", ""))
    with pytest.raises(ConfigError) as err:
        load_split(data, "mine", "dev")
    assert str(err.value) == f"dataset 'mine' declares no dev split ({data / 'datasets.yaml'}:2)"
    with pytest.raises(ConfigError, match="unknown dataset 'nope' \\(choose from twitter2015, twitter2017, cmner, mmnerd, mine\\)"):
        load_split(data, "nope", "train")
    (data / "mine" / "tr.conll").unlink()
    with pytest.raises(Exception, match=r"tr.conll: not found \(the train split of 'mine', declared at .*datasets.yaml:5\)"):
        load_split(data, "mine", "train")


def test_an_empty_declarations_file_declares_nothing(tmp_path: Path) -> None:
    for text in ("", "datasets:\n", "# later\ndatasets: {}\n"):
        (tmp_path / "datasets.yaml").write_text(text, encoding="utf-8")
        assert [s.name for s in available_datasets(tmp_path)] == list(DATASETS)


def test_the_workspace_finds_declared_files_and_builtins_are_unchanged(tmp_path: Path) -> None:
    data = make_data_dir(tmp_path)
    layout = DataDir(data)
    assert layout.split_file("mine", "dev") == data / "mine" / "de.conll"
    assert layout.images_dir("mine") == data / "mine" / "images"
    assert layout.dataset_of_file(data / "mine" / "te.conll") == ("mine", "test")
    assert layout.split_file("twitter2015", "dev") == data / "twitter2015" / "valid.txt"
    assert get_dataset("twitter2015", data) is DATASETS["twitter2015"] and get_dataset("twitter2015") is DATASETS["twitter2015"]
    assert [s.name for s in available_datasets(None)] == list(DATASETS)
    with pytest.raises(ConfigError, match="unknown dataset 'mine'"):
        get_dataset("mine")  # without a data directory only the built-ins are known


def test_a_datasets_file_beside_the_data_dir_and_a_name_declared_twice(tmp_path: Path) -> None:
    data = make_data_dir(tmp_path / "data")
    extra = tmp_path / "more.yaml"
    extra.write_text("datasets:\n  other:\n    language: de\n    format: conll\n    splits: {test: mine/te.conll}\n", encoding="utf-8")
    spec = get_dataset("other", data, extra)
    assert spec.lang == "de" and spec.label_kind is LabelKind.CANONICAL
    assert DataDir(data, extra).split_file("other", "test") == data / "mine" / "te.conll"
    listed = json.loads(runner.invoke(app, ["data", "list", "--data-dir", str(data), "--datasets", str(extra), "--json"]).output)
    assert [d["name"] for d in listed["datasets"]][-2:] == ["mine", "other"]
    with pytest.raises(DataValidationError, match="te.conll:1: label 'B-person' is not in the canonical schema"):
        load_split(data, "other", "test", datasets_file=extra)  # no label rule: PER/LOC/ORG/MISC only
    extra.write_text(THE_FORM, encoding="utf-8")
    result = runner.invoke(app, ["data", "list", "--data-dir", str(data), "--datasets", str(extra)])
    assert result.exit_code == 2 and result.output.strip() == f"error: {extra}:2: dataset 'mine' is declared twice (first at {data / 'datasets.yaml'}:2)"
    result = runner.invoke(app, ["data", "list", "--data-dir", str(data), "--datasets", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2 and "nope.yaml: datasets file not found" in result.output


# -- every bad declaration: one line, file:line, exit 2 ------------------------------------------------

BAD = {
    "unknown key": (THE_FORM.replace("    language: en\n", "    language: en\n    lang: en\n"), "lang: en", r"mine: unknown key 'lang' \(known: language, format"),
    "unknown top key": ("dataset:\n  mine: {}\n", "dataset:", "top level: unknown key 'dataset'"),
    "bad language": (THE_FORM.replace("language: en", "language: eng"), "language:", "mine.language: 'eng' is not an ISO 639-1 language code"),
    "unknown language": (THE_FORM.replace("language: en", "language: xx"), "language:", "'xx' is not an ISO 639-1"),
    "unknown format": (THE_FORM.replace("format: conll", "format: bio"), "format:", "mine.format: 'bio' is not one of 'twitter', 'cmner', 'conll' or 'jsonl'"),
    "builtin clash": (THE_FORM.replace("  mine:", "  cmner:"), "cmner:", "'cmner' is a built-in dataset; give yours another name"),
    "missing splits": (THE_FORM.replace("    splits: {train: mine/tr.conll, dev: mine/de.conll, test: mine/te.conll}\n", ""), "mine:", "mine: missing key 'splits'"),
    "empty splits": (THE_FORM.replace("{train: mine/tr.conll, dev: mine/de.conll, test: mine/te.conll}", "{}"), "splits:", "mine.splits: declare at least one of train, dev, test"),
    "unknown split": (THE_FORM.replace("dev: mine/de.conll", "valid: mine/de.conll"), "splits:", "mine.splits: unknown key 'valid' \\(known: train, dev, test\\)"),
    "bad image_names": (THE_FORM.replace("image_names: stem", "image_names: suffix"), "image_names:", "mine.image_names: 'suffix' is not one of 'stem' or 'prefix'"),
    "label map into a non-canonical type": (THE_FORM.replace("labels: open ", "labels:\n      person: PER\n      product: PRODUCT\n"), "product:",
                                            "mine.labels.product: 'PRODUCT' is not a canonical type \\(PER, LOC, ORG, MISC\\)"),
    "bad labels word": (THE_FORM.replace("labels: open ", "labels: closed "), "labels:", "mine.labels: 'closed' is not one of 'canonical' or 'open'"),
    "bad file type in a map": (THE_FORM.replace("labels: open ", "labels: {'a b': PER}"), "labels:", "type 'a b' must match"),
    "bad dataset name": (THE_FORM.replace("  mine:", "  My.Data:"), "My.Data:", "dataset name 'My.Data' must be lower-case"),
    "alias": ("base: &b {language: en}\ndatasets:\n  mine: *b\n", "mine: *b", "alias \\*b is not allowed"),
    "repeated key": (THE_FORM.replace("    format: conll\n", "    format: conll\n    format: jsonl\n"), "format: jsonl", "key 'format' is written twice"),
    "not YAML": ("datasets:\n  mine: [unclosed\n", None, "not valid YAML"),
    "not a mapping": ("datasets:\n  - mine\n", "datasets:", "datasets: expected a mapping, got list"),
    "a dataset not a mapping": ("datasets:\n  mine: conll\n", "mine:", "mine: expected a mapping, got str"),
    "an empty dataset": ("datasets:\n  mine:\n", "mine:", "mine: expected a mapping, got nothing"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_declaration_is_one_line_with_file_and_line_and_exit_2(tmp_path: Path, case: str) -> None:
    text, needle, message = BAD[case]
    data = make_data_dir(tmp_path, text)
    path = data / "datasets.yaml"
    for command in (["data", "list"], ["data", "validate", "mine"]):
        result = runner.invoke(app, [*command, "--data-dir", str(data)])
        assert result.exit_code == 2, result.output
        assert result.output.count("\n") == 1 and "Traceback" not in result.output, result.output
        where = f"{path}:{line_of(text, needle)}: " if needle else f"{path}:\\d+: "
        assert re.search(re.escape(where) if needle else where, result.output), (where, result.output)
        assert re.search(message, result.output), result.output
    with pytest.raises(ConfigError):
        load_split(data, "twitter2015", "train")  # a broken datasets.yaml is never skipped silently


# -- open labels: read, write, read is the identity -------------------------------------------------

_TOKEN = st.text(st.characters(exclude_characters="\t\n\x00\ufeff", exclude_categories=("Cs",)), min_size=1, max_size=6)
_TYPES = st.lists(st.from_regex(OPEN_TYPE_PATTERN, fullmatch=True), min_size=1, max_size=4, unique=True)


@st.composite
def conll_corpora(draw) -> list[list[tuple[str, str]]]:
    types = draw(_TYPES)
    label = st.one_of(st.just("O"), st.builds(lambda p, t: f"{p}-{t}", st.sampled_from("BI"), st.sampled_from(types)))
    post = st.lists(st.tuples(_TOKEN, label), min_size=1, max_size=6)
    return draw(st.lists(post, min_size=1, max_size=5))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(corpus=conll_corpora())
def test_open_labels_read_write_read_is_the_identity(tmp_path: Path, corpus: list[list[tuple[str, str]]]) -> None:
    path = tmp_path / "in.conll"
    path.write_text(conll(corpus), encoding="utf-8")
    first = read_samples(path, "conll", "keep", schema=OPEN_SCHEMA, id_prefix="train")
    assert [list(zip(s.tokens, s.labels)) for s in first] == corpus  # the file's types, as written (orphan I- kept)
    assert [s.id for s in first] == [f"train-{n}" for n in range(1, len(corpus) + 1)]
    back = tmp_path / "back.conll"
    write_samples(back, first, "conll", schema=OPEN_SCHEMA)
    assert back.read_bytes() == path.read_bytes()
    again = read_samples(back, "conll", "keep", schema=OPEN_SCHEMA, id_prefix="train")
    assert [(s.id, s.tokens, s.labels) for s in again] == [(s.id, s.tokens, s.labels) for s in first]


def test_open_labels_in_other_formats_and_a_declared_language(tmp_path: Path) -> None:
    (tmp_path / "de").mkdir()
    (tmp_path / "de" / "test.txt").write_text("IMGID:7\nBerlin\tB-OTHER\nist\tO\n", encoding="utf-8")
    (tmp_path / "de" / "test.jsonl").write_text('{"id": "a", "tokens": ["x"], "labels": ["B-PRODUCT"]}\n', encoding="utf-8")
    (tmp_path / "datasets.yaml").write_text(
        "datasets:\n  tw-de:\n    language: de\n    format: twitter\n    splits: {test: de/test.txt}\n    labels: open\n"
        "  js:\n    language: fr\n    format: jsonl\n    splits: {test: de/test.jsonl}\n    labels: open\n", encoding="utf-8")
    [post] = load_split(tmp_path, "tw-de", "test")
    assert (post.id, post.labels, post.lang) == ("7", ["B-OTHER", "O"], "de")  # open: OTHER is not read as MISC
    assert format_text([post], "twitter", schema=get_dataset("tw-de", tmp_path).schema) == "IMGID:7\nBerlin\tB-OTHER\nist\tO\n"
    [js] = load_split(tmp_path, "js", "test")
    assert (js.labels, js.lang) == (["B-PRODUCT"], "fr")
    with pytest.raises(DataValidationError, match="not in the canonical schema"):
        read_samples(tmp_path / "de" / "test.jsonl")  # the same file without the declaration: canonical labels only
    builtin = parse_file(tmp_path / "de" / "test.txt", "twitter")
    assert builtin.samples[0].labels == ["B-MISC", "O"]  # the built-in Twitter rule is unchanged


def test_image_name_rules(tmp_path: Path) -> None:
    names = ("train-1.jpg", "train-1_b.jpg", "train-10.jpg", "train-2_a.png")
    for rule, expected in (("stem", [["train-1.jpg"], []]), ("prefix", [["train-1_b.jpg"], ["train-2_a.png"]])):
        root = tmp_path / rule
        data = make_data_dir(root, THE_FORM.replace("image_names: stem", f"image_names: {rule}"), images=names)
        assert [s.images for s in load_split(data, "mine", "train")] == expected


def test_train_records_the_datasets_file_and_stores_the_old_config_without_it(tmp_path: Path) -> None:
    extra = tmp_path / "more.yaml"
    with_file = runner.invoke(app, ["train", "--config", "tgt_only", "--datasets", str(extra), "--dry-run"])
    assert with_file.exit_code == 0, with_file.output
    assert f"  datasets_file: {extra}\n" in with_file.output
    without = runner.invoke(app, ["train", "--config", "tgt_only", "--dry-run"])
    assert "datasets_file" not in without.output


@pytest.mark.slow  # builds a random-weight VGG16
def test_features_extract_reads_declared_datasets_with_their_image_rule(tmp_path: Path) -> None:
    from xlingual.testing.synthetic import write_images

    data = make_data_dir(tmp_path / "data", THE_FORM.replace("image_names: stem", "image_names: prefix"), images=())
    write_images(data / "mine" / "images", ["train-1_a.jpg", "test-2_b.jpg", "train-2.jpg"])  # train-2.jpg: a stem, not train-2's under 'prefix'
    result = runner.invoke(app, ["features", "extract", "--data-dir", str(data), "--backbone", "vgg16", "--weights", "random",
                                 "--out", str(tmp_path / "cache"), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["samples"] == sum(len(posts) for posts in POSTS.values())
    assert (summary["named"], summary["extracted"], summary["samples_without_image"]) == (2, 2, 4)
