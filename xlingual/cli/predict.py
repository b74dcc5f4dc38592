"""``xl predict``: label a dataset file with a saved model."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Optional

import typer

from xlingual.cli._options import DeviceOption, FeaturesOption, ImageDirOption, ImageSeedOption, PostImagesOption
from xlingual.devices import DEFAULT_DEVICE
from xlingual.features.choices import PostImages


def predict(
    model: Path = typer.Option(..., "--model", "-m", help="Model folder written by 'xl train' or save_pretrained (ACN or UMT)."),
    input: Path = typer.Option(..., "--input", "-i", help="Dataset file to label (Twitter, CMNER or JSONL format; existing labels are ignored)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Where to write the labelled file, in the input's format (default: stdout)."),
    features: FeaturesOption = None,
    image_dir: ImageDirOption = None,
    images: PostImagesOption = PostImages.ALL,
    seed: ImageSeedOption = 0,
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Posts per forward pass."),
    device: DeviceOption = DEFAULT_DEVICE,
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stderr."),
) -> None:
    """Label a dataset file with a saved model, writing the same format back.

    Examples:

        xl predict --model runs/umt-en/best --input data/twitter2015/test.txt --output pred.txt --features data/features/resnet152 --image-dir data/twitter2015/images

        xl predict -m runs/acn-zh/best -i data/cmner/text/test.txt --images one --features data/features/vgg16 --image-dir data/cmner/images > pred.txt
    """
    from xlingual.evaluation.prediction import predict_file, render_like

    predicted, report = predict_file(
        model, input, output, features=features, image_dir=image_dir, images=images.value, seed=seed, batch_size=batch_size, device=device,
    )
    if output is None:
        typer.echo(render_like(predicted, input), nl=False)
    if as_json:
        typer.echo(json.dumps(dataclasses.asdict(report)), err=True)
        return
    entities = ", ".join(f"{k} {v}" for k, v in report.entities.items()) or "none"
    where = f" -> {report.output}" if report.output else ""
    typer.echo(f"{report.input}{where}: {report.samples} posts, {report.tokens} tokens labelled by {report.model_type}; entities: {entities}", err=True)


def register(app: typer.Typer) -> None:
    app.command("predict")(predict)
