"""MMNERD (2M-NER's dataset): its registry entry, `xl data download mmnerd` with checksums, and the commands that read it.

No network and no copy of the real files: the download is served from generated
files in MMNERD's format (Twitter format, ``IMGID:`` headers with the dataset's
odd ids, MISC spelled MISC), with the checksums patched to theirs, exactly as
for the other datasets.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from xlingual.cli import app
from xlingual.data import download
from xlingual.data.datasets import DATASETS, RemoteFile, load_split
from xlingual.data.formats import format_text
from xlingual.data.sample import Sample
from xlingual.errors import NetworkError
from xlingual.stage_inputs import dataset_file
from xlingual.testing.synthetic import write_images

runner = CliRunner()
# Ids of the kinds the real files hold: product images named after their URL, Twitter2017 posts, "O_" posts.
IDS = ["03433732---81KcMoDB8YL._SR500,500_", "16_05_02_503", "O_3538", "00410905---RE2iv0q?ver=2212&q=90&h=675&w=830&b=%23FFFFFFFF&a"]


def mmnerd_posts(split: str) -> list[Sample]:
    words = [["Sterling", "Silver", "BFF", "Necklace"], ["#", "NBABoss", "Charlotte", "Hornets"], ["Visit", "Paris", "with", "Anna"]]
    labels = [["O", "O", "B-MISC", "O"], ["O", "O", "B-ORG", "I-ORG"], ["O", "B-LOC", "O", "B-PER"]]
    return [Sample(id=f"{post_id}{'' if split == 'train' else '-' + split}", tokens=words[i % 3], labels=labels[i % 3], lang="en")
            for i, post_id in enumerate(IDS)]


def test_registry_entry_names_the_pinned_public_files() -> None:
    spec = DATASETS["mmnerd"]
    assert (spec.lang, spec.format, spec.split_files) == ("en", "twitter", {"train": "train.txt", "dev": "valid.txt", "test": "test.txt"})
    assert set(spec.remote) == set(spec.split_files.values())
    for name, remote in spec.remote.items():
        assert re.fullmatch(r"https://raw\.githubusercontent\.com/wangdsh/MMNERD/[0-9a-f]{40}/train_valid_test/train_valid_test_en/"
                            + name[:-4] + r"_conll_format\.txt", remote.url), remote.url
        assert re.fullmatch(r"[0-9a-f]{64}", remote.sha256) and remote.size > 400_000
    assert "wangdsh@pku.edu.cn" in spec.images_hint and "{images}" in spec.images_hint


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    """Generated MMNERD files behind the real URLs, with the spec's sizes and checksums made theirs."""
    spec = DATASETS["mmnerd"]
    files: dict[str, bytes] = {}
    remote = {}
    for split, name in spec.split_files.items():
        data = format_text(mmnerd_posts(split), "twitter", {"MISC": "MISC"}).encode()
        files[spec.remote[name].url] = data
        remote[name] = RemoteFile(spec.remote[name].url, len(data), hashlib.sha256(data).hexdigest())
    monkeypatch.setattr(download, "get_dataset", lambda name: dataclasses.replace(spec, remote=remote))
    monkeypatch.setattr(download.urllib.request, "urlopen", lambda url, timeout=None: io.BytesIO(files[url]))
    return files


def test_download_then_validate_stats_and_load(served: dict[str, bytes], tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = runner.invoke(app, ["data", "download", "mmnerd", "--to", str(data)])
    assert result.exit_code == 0, result.output
    assert result.stdout.count("checksum verified") == 3
    assert "wangdsh@pku.edu.cn" in result.stdout and str(data / "mmnerd" / "images") in result.stdout
    files = [data / "mmnerd" / name for name in ("train.txt", "valid.txt", "test.txt")]
    assert [path.read_bytes() for path in files] == list(served.values())
    assert (data / "mmnerd" / "images").is_dir()

    validated = runner.invoke(app, ["data", "validate", *map(str, files)])
    assert validated.exit_code == 0 and validated.stdout.count(f"ok (twitter, {len(IDS)} posts") == 3, validated.output
    stats = runner.invoke(app, ["data", "stats", *map(str, files), "--json"])
    assert stats.exit_code == 0, stats.output
    train = json.loads(stats.stdout)["splits"][0]
    expected = {"PER": 1, "LOC": 1, "ORG": 1, "MISC": 2}  # posts 0 and 3 have the MISC post's labels
    assert {kind: train["entities"][kind] for kind in expected} == expected and train["posts"] == len(IDS)

    write_images(data / "mmnerd" / "images", [f"{post_id}.jpg" for post_id in IDS[:2]])
    samples = load_split(data, "mmnerd", "train")
    assert [s.images for s in samples] == [[f"{IDS[0]}.jpg"], [f"{IDS[1]}.jpg"], [], []]
    assert samples[0].labels == ["O", "O", "B-MISC", "O"] and samples[0].lang == "en"
    assert dataset_file(files[2]).image_dir() == data / "mmnerd" / "images"

    again = runner.invoke(app, ["data", "download", "mmnerd", "--to", str(data)])  # valid copies are kept
    assert again.exit_code == 0 and again.stdout.count("checksum verified") == 3


def test_other_bytes_than_the_recorded_release_are_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(download.urllib.request, "urlopen", lambda *a, **k: io.BytesIO(b"IMGID:1\nx\tO\n"))
    with pytest.raises(NetworkError, match="a different version"):
        download.download_dataset("mmnerd", tmp_path)
    assert not (tmp_path / "mmnerd" / "train.txt").exists()
