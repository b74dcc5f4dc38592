"""``xl features``: extract and inspect the cached image features."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.console import Console
from rich.table import Table

from xlingual.cli._aliases import OUT_IS_OUTPUT
from xlingual.cli._options import DataDirOption, DatasetsOption, DeviceOption, GpusPerWorkerOption, JsonOption, RayOption, WorkersOption
from xlingual.devices import DEFAULT_DEVICE
from xlingual.workspace import DEFAULT_DATA_DIR
from xlingual.features.choices import Backbone, CropPolicy, StorageDtype
from xlingual.scale.runtime import DEFAULT_PART_SIZE, RaySettings

if TYPE_CHECKING:
    from xlingual.features.extract import ExtractionReport

features_app = typer.Typer(no_args_is_help=True, help="Extract and inspect cached image features (VGG16 for ACN, ResNet-152 for UMT, CLIP ViT-B/32 for 2M-NER).")


def _print_report(report: ExtractionReport, show_failed: int = 10) -> None:
    table = Table(title=f"{report.backbone} features in {report.cache_dir}")
    table.add_column("")
    table.add_column("value", justify="right")
    rows = [
        ("weights / crop", f"{report.weights} / {report.crop}"),
        ("images named", str(report.named)),
        ("extracted now", str(report.extracted)),
        ("taken from cache", str(report.cached)),
        ("failed", str(len(report.failed))),
    ]
    if report.samples is not None:
        rows += [("samples", str(report.samples)), ("samples with no image", str(report.samples_without_image))]
    if report.extracted:
        rows += [("device", report.device), ("images/s", f"{report.images_per_second:.2f}")]
    for name, value in rows:
        table.add_row(name, value)
    console = Console()
    console.print(table)
    for name, reason in list(report.failed.items())[:show_failed]:
        typer.echo(f"failed: {name}: {reason}", err=True)
    if len(report.failed) > show_failed:
        typer.echo(f"failed: … {len(report.failed) - show_failed} more (see --json)", err=True)


@features_app.command("extract", cls=OUT_IS_OUTPUT)
def extract(
    images: Optional[Path] = typer.Option(None, "--images", help="Folder holding the image files. Without it, every dataset under --data-dir that has an image folder."),
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    datasets: DatasetsOption = None,
    dataset: Optional[list[Path]] = typer.Option(None, "--dataset", "-d", help="Dataset file or folder (its *.txt files) whose posts' images to extract (repeat for several; translations find their source post's images). Without it, every image in the folder."),
    backbone: Backbone = typer.Option(Backbone.VGG16, "--backbone", "-b", help="vgg16 (ACN, 49x512), resnet152 (UMT, 49x2048) or clip-vit-b32 (2M-NER, 50x768 tokens)."),
    out: Optional[Path] = typer.Option(None, "--output", "-o", help="Cache folder [default: DATA_DIR/features/BACKBONE]."),
    weights: str = typer.Option("default", "--weights", help="'default' (torchvision ImageNet weights; for clip-vit-b32 openai/clip-vit-base-patch32), a local .pth state dict (CNNs) or a hub id or save_pretrained folder (CLIP), or 'random' (smoke runs)."),
    crop: CropPolicy = typer.Option(CropPolicy.CLEAN, "--crop", help="clean (resize + centre crop; ImageNet normalisation for the CNNs, the model's own for CLIP) or faithful (the original scripts' preprocessing)."),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="Images per forward pass."),
    device: DeviceOption = DEFAULT_DEVICE,
    seed: int = typer.Option(0, "--seed", help="Seed of random weights and of the faithful ResNet crop."),
    dtype: StorageDtype = typer.Option(StorageDtype.FLOAT16, "--dtype", help="Storage type of the cache."),
    as_json: JsonOption = False,
    ray: RayOption = None,
    workers: WorkersOption = 0,
    gpus_per_worker: GpusPerWorkerOption = 0.0,
    part_size: int = typer.Option(DEFAULT_PART_SIZE, "--part-size", min=1, help="With --ray: images per part, the unit of work, resume and failure "
                                  "(rounded up to whole batches; smaller where --workers N needs N parts)."),
) -> None:
    """Run a frozen image encoder over the images once and cache their 7x7 region features (CNNs) or output tokens (CLIP).

    Images already in the cache are not read again; an interrupted run resumes. A cache
    never mixes features of different weights or crop policies.

    Examples:

        xl features extract --data-dir data --backbone resnet152

        xl features extract --images data/cmner/images -d data/cmner/text/train.txt -d data/cmner/text/dev.txt -d data/cmner/text/test.txt --backbone resnet152

        xl features extract --images data/twitter2015/images -d data/twitter2015/train.txt --backbone vgg16 --json

        xl features extract --images data/cmner/images --weights random --output /tmp/smoke

        xl features extract --images data/mmnerd/images -d data/mmnerd/train.txt --backbone clip-vit-b32

        xl features extract --data-dir data --backbone resnet152 --ray auto --gpus-per-worker 1

        xl features extract --images data/cmner/images --weights random --ray --workers 2 --part-size 128
    """
    from xlingual.scale.features import extract as extract_features

    report = extract_features(images, data_dir, dataset, out, datasets_file=datasets, backbone=backbone.value, weights=weights, crop=crop.value,
                              batch_size=batch_size, device=device, seed=seed, dtype=dtype.value,
                              ray=RaySettings.from_options(ray, workers, gpus_per_worker), part_size=part_size)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        _print_report(report)


@features_app.command("info")
def info(
    cache: Path = typer.Argument(..., help="A feature cache folder."),
    as_json: JsonOption = False,
) -> None:
    """Describe a feature cache: backbone, what produced it, how many images it holds.

    Examples:

        xl features info data/features/resnet152
    """
    from xlingual.features.cache import FeatureCache

    summary = FeatureCache.open(cache).summary()
    if as_json:
        typer.echo(json.dumps(summary, ensure_ascii=False))
        return
    table = Table(title=f"feature cache {cache}")
    table.add_column("")
    table.add_column("value")
    for key, value in summary.items():
        table.add_row(key, str(value))
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(features_app, name="features", help="Extract and inspect cached image features.")
