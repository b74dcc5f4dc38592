"""Broken and unusual image files: each is converted or skipped and reported, never a crash."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from xlingual.errors import ImageError
from xlingual.features import FeatureCache, extract_features, preprocess_image
from xlingual.features.preprocess import IMAGENET_MEAN

POLICIES = [("vgg16", "clean"), ("vgg16", "faithful"), ("resnet152", "clean"), ("resnet152", "faithful"),
            ("clip-vit-b32", "clean"), ("clip-vit-b32", "faithful")]


def _photo(size: tuple[int, int], seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def odd_images(tmp_path_factory) -> Path:
    """One file per case, generated with Pillow."""
    folder = tmp_path_factory.mktemp("odd_images")
    _photo((320, 240)).save(folder / "rgb.jpg", quality=90)
    _photo((320, 240)).convert("L").save(folder / "grey.jpg")
    _photo((300, 260)).convert("CMYK").save(folder / "cmyk.jpg")
    rgba = _photo((256, 256)).convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize((256, 256)))
    rgba.save(folder / "alpha.png")
    _photo((240, 240)).convert("P", palette=Image.Palette.ADAPTIVE).save(folder / "palette.png", transparency=0)
    Image.fromarray(np.arange(240 * 240, dtype=np.uint16).reshape(240, 240) * 3).save(folder / "deep.png")
    _photo((1, 1)).save(folder / "tiny.png")
    Image.new("RGB", (9_000, 9_000), (30, 120, 200)).save(folder / "huge.jpg", quality=50)  # 81 MP: under Pillow's limit
    data = (folder / "rgb.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (folder / "not_an_image.jpg").write_text("<html>404 not found</html>\n")
    (folder / "empty.jpg").write_bytes(b"")
    return folder


CONVERTED = ["rgb.jpg", "grey.jpg", "cmyk.jpg", "alpha.png", "palette.png", "deep.png", "tiny.png", "huge.jpg"]
BROKEN = ["truncated.jpg", "not_an_image.jpg", "empty.jpg"]


@pytest.mark.parametrize("backbone,crop", POLICIES)
def test_every_readable_case_becomes_a_finite_224_input(odd_images: Path, backbone: str, crop: str) -> None:
    for name in CONVERTED:
        if name == "huge.jpg" and crop == "faithful":
            continue  # covered once below; a full 10000x10000 decode per policy is slow
        if name == "tiny.png" and (backbone, crop) == ("resnet152", "faithful"):
            with pytest.raises(ImageError, match="smaller than 224"):
                preprocess_image(odd_images / name, backbone, crop)
            continue
        array = preprocess_image(odd_images / name, backbone, crop)
        assert array.shape == (3, 224, 224) and array.dtype == np.float32, name
        assert np.isfinite(array).all(), name


@pytest.mark.parametrize("backbone,crop", POLICIES)
def test_broken_files_raise_image_error_naming_the_file(odd_images: Path, backbone: str, crop: str) -> None:
    for name in BROKEN + ["absent.jpg"]:
        with pytest.raises(ImageError, match=name.replace(".", r"\.")):
            preprocess_image(odd_images / name, backbone, crop)


def test_huge_image_is_read_with_the_faithful_crop_too(odd_images: Path) -> None:
    array = preprocess_image(odd_images / "huge.jpg", "resnet152", "faithful", seed=0)
    assert array.shape == (3, 224, 224)
    rgb = array.transpose(1, 2, 0) * np.array([0.229, 0.224, 0.225]) + IMAGENET_MEAN
    np.testing.assert_allclose(rgb.mean(axis=(0, 1)) * 255, [30, 120, 200], atol=3)


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A valid PNG start stating ``width`` x ``height`` grey pixels, with one tiny data chunk: what a bomb's header says, without its bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("backbone,crop", POLICIES)
def test_an_image_over_pillows_limit_is_refused_from_its_header_before_decoding(tmp_path: Path, monkeypatch, backbone: str, crop: str) -> None:
    """A PNG stating 13000x13000 (169 MP; Pillow only warns below twice its limit) costs nothing: no pixel is decoded."""
    bomb = _png_header_only(tmp_path / "bomb.png", 13_000, 13_000)

    def no_decoding(self) -> None:
        raise AssertionError("pixels decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(ImageError, match=r"^bomb\.png: too large to decode \(13000x13000 pixels, more than Pillow's limit of 89,478,485\)$"):
        preprocess_image(bomb, backbone, crop)


def test_the_limit_is_pillows_own_setting(tmp_path: Path, monkeypatch) -> None:
    _photo((100, 100)).save(tmp_path / "at.png")
    _photo((101, 100)).save(tmp_path / "over.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100 * 100)
    assert preprocess_image(tmp_path / "at.png", "vgg16").shape == (3, 224, 224)
    with pytest.raises(ImageError, match="over.png: too large to decode"):
        preprocess_image(tmp_path / "over.png", "vgg16")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # Pillow's way of saying "no limit"
    assert preprocess_image(tmp_path / "over.png", "vgg16").shape == (3, 224, 224)


def test_clean_policy_normalises_with_imagenet_statistics(tmp_path: Path) -> None:
    mean_colour = tuple(int(round(v * 255)) for v in IMAGENET_MEAN)
    Image.new("RGB", (500, 300), mean_colour).save(tmp_path / "mean.png")
    Image.new("RGBA", (300, 300), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    for backbone in ("vgg16", "resnet152"):
        assert np.abs(preprocess_image(tmp_path / "mean.png", backbone)).max() < 0.02
        # fully transparent pixels are composited on white, not read as black
        white = (1 - IMAGENET_MEAN) / np.array([0.229, 0.224, 0.225])
        np.testing.assert_allclose(preprocess_image(tmp_path / "clear.png", backbone)[:, 100, 100], white, rtol=1e-5)


def test_resnet_clean_policy_is_a_centre_crop_of_the_resized_image(tmp_path: Path) -> None:
    image = np.zeros((256, 512, 3), dtype=np.uint8)
    image[:, 128:384] = 255  # white centre half, black sides: the centre crop sees only white
    Image.fromarray(image).save(tmp_path / "wide.png")
    array = preprocess_image(tmp_path / "wide.png", "resnet152", "clean")
    white = (1 - IMAGENET_MEAN) / np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(array[:, :, 5].mean(axis=1), white, rtol=1e-3)


def test_vgg_faithful_reproduces_the_wrapping_8bit_mean_subtraction(tmp_path: Path) -> None:
    Image.new("RGB", (50, 80), (100, 200, 130)).save(tmp_path / "flat.png")
    array = preprocess_image(tmp_path / "flat.png", "vgg16", "faithful")
    # 100-103.939 -> -3 -> 253; 200-116.779 -> 83; 130-123.68 -> 6 (truncated, modulo 256)
    assert array[:, 10, 10].tolist() == [253.0, 83.0, 6.0]
    Image.new("L", (50, 80), 100).save(tmp_path / "grey.png")
    assert preprocess_image(tmp_path / "grey.png", "vgg16", "faithful")[:, 0, 0].tolist() == [253.0, 240.0, 233.0]


def test_resnet_faithful_crop_is_deterministic_per_seed_and_name(tmp_path: Path) -> None:
    _photo((640, 480), seed=5).save(tmp_path / "photo.png")
    first = preprocess_image(tmp_path / "photo.png", "resnet152", "faithful", seed=0)
    np.testing.assert_array_equal(first, preprocess_image(tmp_path / "photo.png", "resnet152", "faithful", seed=0))
    others = [preprocess_image(tmp_path / "photo.png", "resnet152", "faithful", seed=s) for s in range(1, 6)]
    assert any(not np.array_equal(first, other) for other in others)
    clean = preprocess_image(tmp_path / "photo.png", "resnet152", "clean")
    assert not np.allclose(first, clean)


def test_extraction_converts_or_reports_every_case(odd_images: Path, tmp_path: Path) -> None:
    names = CONVERTED + BROKEN + ["absent.jpg"]
    report = extract_features(odd_images, names, tmp_path / "c", backbone="vgg16", weights="random", batch_size=4)
    assert report.named == len(names)
    assert report.extracted == len(CONVERTED)
    assert set(report.failed) == set(BROKEN) | {"absent.jpg"}
    assert report.failed["absent.jpg"] == "file not found"
    assert "decode" in report.failed["truncated.jpg"] or "truncated" in report.failed["truncated.jpg"]
    cache = FeatureCache.open(tmp_path / "c")
    assert sorted(cache.names()) == sorted(CONVERTED)
    post = cache.post_feature(["truncated.jpg", "grey.jpg", "absent.jpg"])
    assert post.has_image and post.n_images == 1
    np.testing.assert_array_equal(post.array, cache.get("grey.jpg"))
    assert not cache.post_feature(BROKEN).has_image
