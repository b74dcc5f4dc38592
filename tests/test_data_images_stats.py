"""Image lookup, statistics (Table 1) and downloads."""

from __future__ import annotations

import io
import urllib.error
from pathlib import Path

import pytest

from xlingual.data import download
from xlingual.data.datasets import get_dataset, load_split
from xlingual.data.formats import read_samples
from xlingual.data.images import ImageIndex, attach_images
from xlingual.data.sample import Sample
from xlingual.data.stats import compute_stats
from xlingual.errors import ImageError, NetworkError
from xlingual.workspace import DataDir


def test_twitter_id_prefixes_do_not_steal_images(tmp_path: Path) -> None:
    for name in ["377.jpg", "37771.jpg", "37780.jpg", "L1_a.jpg", "L1_b.jpg", "L10_c.jpg", "notes.txt"]:
        (tmp_path / name).write_bytes(b"x")
    index = ImageIndex(tmp_path)
    assert index.lookup("377") == ["377.jpg"]
    assert index.lookup("37") == []
    assert index.lookup("L1") == ["L1_a.jpg", "L1_b.jpg"]
    assert index.size == 6


def test_real_cmner_images_are_attached_and_missing_ones_reported(shared_data: Path) -> None:
    samples = read_samples(shared_data / "cmner" / "example_text.txt")
    report = attach_images(samples, shared_data / "cmner" / "images")
    by_id = {s.id: s.images for s in samples}
    assert len(by_id["L364I3366"]) == 9
    assert all(name.startswith("L364I3366_") for name in by_id["L364I3366"])
    assert report.images == sum(len(v) for v in by_id.values())
    assert report.with_images + report.missing == len(samples)

    lonely = [Sample("Lnothere0", ["a"], ["O"], lang="zh")]
    report = attach_images(lonely, shared_data / "cmner" / "images")
    assert report.missing_ids == ["Lnothere0"] and "missing for Lnothere0" in report.summary()


def test_translated_sample_finds_its_source_images(tmp_path: Path) -> None:
    (tmp_path / "Labc_1.jpg").write_bytes(b"x")
    sample = Sample("Labc", ["x"], ["O"], meta={"source_id": "Labc"})
    attach_images([sample], tmp_path)
    assert sample.images == ["Labc_1.jpg"]


def test_missing_image_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="image folder does not exist"):
        ImageIndex(tmp_path / "nope")


def test_cmner_statistics_match_table_1(shared_data: Path) -> None:
    expected = {  # PER, LOC, ORG, MISC as counted in the files (the paper's Table 1 says LOC 1,604 for test)
        "train": (3814, 4760, 6045, 1754),
        "dev": (1313, 1546, 1942, 594),
        "test": (1287, 1605, 1863, 522),
    }
    for split, counts in expected.items():
        stats = compute_stats(split, load_split(shared_data, "cmner", split))
        assert tuple(stats.entities[t] for t in ("PER", "LOC", "ORG", "MISC")) == counts
    assert compute_stats("train", load_split(shared_data, "cmner", "train")).posts_without_entities == 1


def test_twitter2015_statistics_match_the_umt_logs(shared_data: Path) -> None:
    dev = compute_stats("dev", load_split(shared_data, "twitter2015", "dev"))
    test = compute_stats("test", load_split(shared_data, "twitter2015", "test"))
    assert dev.total_entities == 1594 and test.total_entities == 5207
    assert (dev.posts, test.posts) == (1000, 3257)


def test_download_fails_fast_and_clearly_without_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def no_network(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(download.urllib.request, "urlopen", no_network)
    with pytest.raises(NetworkError, match="cannot download .*no network"):
        download.download_dataset("cmner", tmp_path)
    assert not any(tmp_path.rglob("*.txt"))


def test_download_rejects_a_different_version(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(download.urllib.request, "urlopen", lambda *a, **k: io.BytesIO(b"IMGID:1\nx\tO\n"))
    with pytest.raises(NetworkError, match="expected 670884 bytes"):
        download.download_dataset("twitter2015", tmp_path)
    assert not (tmp_path / "twitter2015" / "train.txt").exists()


def test_download_keeps_valid_copies_without_network(monkeypatch: pytest.MonkeyPatch, shared_data: Path, tmp_path: Path) -> None:
    spec = get_dataset("twitter2015")
    for name in spec.remote:
        target = DataDir(tmp_path).text_dir(spec.name) / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((shared_data / "twitter2015" / name).read_bytes())
    monkeypatch.setattr(download.urllib.request, "urlopen", lambda *a, **k: pytest.fail("no download expected"))
    _, written = download.download_dataset("twitter2015", tmp_path)
    assert len(written) == 3


# ---------------------------------------------------------------- the same properties on generated data


def test_generated_cmner_images_are_attached_and_missing_ones_reported(generated_data) -> None:
    from xlingual.testing.synthetic import IMAGE_POSTS

    samples = read_samples(generated_data.root / "cmner" / "text" / "train.txt")
    report = attach_images(samples, generated_data.cmner_images)
    by_id = {s.id: s.images for s in samples}
    for post, count in IMAGE_POSTS:
        assert len(by_id[post]) == count and all(name.startswith(f"{post}_") for name in by_id[post])
    assert report.images == 25 == sum(len(v) for v in by_id.values())
    assert report.with_images == len(IMAGE_POSTS) and report.with_images + report.missing == len(samples)
    lonely = [Sample("Lnothere0", ["a"], ["O"], lang="zh")]
    report = attach_images(lonely, generated_data.cmner_images)
    assert report.missing_ids == ["Lnothere0"] and "missing for Lnothere0" in report.summary()


@pytest.mark.parametrize("dataset", ["cmner", "twitter2015"])
def test_statistics_of_generated_files_count_what_was_written(generated_data, dataset: str) -> None:
    written = generated_data.weibo if dataset == "cmner" else generated_data.tweets
    for split, samples in written.items():
        stats = compute_stats(split, load_split(generated_data.root, dataset, split))
        expected = {t: sum(1 for s in samples for span in s.entities() if span.type == t) for t in ("PER", "LOC", "ORG", "MISC")}
        assert stats.entities == expected and all(expected.values())
        assert stats.posts == len(samples) and stats.total_entities == sum(len(s.entities()) for s in samples)
        assert stats.posts_without_entities == sum(1 for s in samples if not s.entities()) > 0


def test_download_keeps_valid_copies_and_fetches_only_a_changed_one(monkeypatch: pytest.MonkeyPatch, generated_data, tmp_path: Path) -> None:
    import dataclasses
    import hashlib

    from xlingual.data.datasets import RemoteFile

    spec = get_dataset("twitter2015")
    source = {name: (generated_data.root / "twitter2015" / name).read_bytes() for name in spec.remote}
    remote = {name: RemoteFile(f"https://example.org/{name}", len(data), hashlib.sha256(data).hexdigest()) for name, data in source.items()}
    monkeypatch.setattr(download, "get_dataset", lambda name: dataclasses.replace(spec, remote=remote))
    for name, data in source.items():
        target = DataDir(tmp_path).text_dir(spec.name) / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    monkeypatch.setattr(download.urllib.request, "urlopen", lambda *a, **k: pytest.fail("no download expected"))
    _, written = download.download_dataset("twitter2015", tmp_path)
    assert len(written) == 3
    (DataDir(tmp_path).text_dir(spec.name) / "valid.txt").write_bytes(source["valid.txt"][:-2] + b"\n")  # same name, other bytes
    fetched: list[str] = []

    def serve(url, **kwargs):
        fetched.append(url)
        return io.BytesIO(source[url.rsplit("/", 1)[1]])

    monkeypatch.setattr(download.urllib.request, "urlopen", serve)
    download.download_dataset("twitter2015", tmp_path)
    assert fetched == ["https://example.org/valid.txt"]
    assert (DataDir(tmp_path).text_dir(spec.name) / "valid.txt").read_bytes() == source["valid.txt"]


def test_an_image_folder_is_indexed_once_per_version_of_its_listing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from xlingual.data import images as images_module

    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "p1.jpg").write_bytes(b"x")
    old = 1_000_000_000_000_000_000  # a listing from long ago
    os.utime(folder, ns=(old, old))
    built = []
    real_init = ImageIndex.__init__

    def counting(self, *args, **kwargs):
        built.append(args[0])
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(ImageIndex, "__init__", counting)
    samples = [Sample("p1", ["a"], ["O"], [], "en"), Sample("p2", ["b"], ["O"], [], "en")]
    for _ in range(3):  # train, dev, test of one run
        attach_images(samples, folder)
    assert len(built) == 1 and samples[0].images == ["p1.jpg"] and samples[1].images == []
    (folder / "p2.jpg").write_bytes(b"x")  # the listing changed just now: indexed afresh, then kept once it is old
    attach_images(samples, folder)
    assert samples[1].images == ["p2.jpg"] and len(built) == 2
    os.utime(folder, ns=(old + 1, old + 1))
    attach_images(samples, folder)
    attach_images(samples, folder)
    assert len(built) == 3 and samples[1].images == ["p2.jpg"]
    assert images_module.RACY_NS >= 1_000_000_000
