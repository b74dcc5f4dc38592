"""``xl predict``: label posts with a saved model (dataset files, raw text, token files)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Optional

import typer

from xlingual.cli._options import DeviceOption, FeaturesOption, ImageDirOption, ImageSeedOption, PostImagesOption
from xlingual.data.new_posts import InputFormat
from xlingual.devices import DEFAULT_DEVICE
from xlingual.errors import ConfigError
from xlingual.features.choices import PostImages


def _one_model(positional: Optional[Path], option: Optional[Path]) -> Path:
    """The model named as ``RUN_OR_MODEL`` or ``--model`` (one of them, or both alike)."""
    if positional is None and option is None:
        raise ConfigError("name the model: xl predict RUN_OR_MODEL --input FILE (a run folder or a model folder)")
    if positional is not None and option is not None and positional != option:
        raise ConfigError(f"two models named: {positional} and --model {option}; give one")
    return positional if positional is not None else option  # type: ignore[return-value]


def predict(
    run_or_model: Optional[Path] = typer.Argument(None, metavar="RUN_OR_MODEL", show_default=False,
                                                  help="A run folder from 'xl train' (its model/ is used) or a model folder."),
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="The same as RUN_OR_MODEL, as an option."),
    input: Path = typer.Option(..., "--input", "-i", help="Posts to label: a dataset file (its labels are ignored), raw text or tokens (see --input-format)."),
    input_format: Optional[InputFormat] = typer.Option(
        None, "--input-format", show_default=False,
        help="raw: one post per line; tokens: one token per line, a blank line between posts, no labels; or a dataset format. "
             "Detected when omitted: a header or JSON first line gives the dataset format, a TAB on every line CoNLL, a line with a "
             "space raw text, several blank-line-separated posts of one-word lines tokens (Chinese: one character per line), one-line "
             "posts raw text; anything else is refused."),
    lang: Optional[str] = typer.Option(None, "--lang", help="The model's language, to tokenise raw text as its datasets are "
                                       "(default: the target language of the model's run)."),
    tokenizer: Optional[str] = typer.Option(None, "--tokenizer", metavar="MODULE:NAME", help="Tokenise raw text with this function (str -> list[str]) instead."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Where to write the labelled posts (default: stdout): a dataset file's own "
                                          "format, raw text as its language's dataset format (CMNER-style for zh, Twitter-style otherwise), tokens as CoNLL."),
    jsonl: Optional[Path] = typer.Option(None, "--jsonl", help="Also write the posts as JSONL, each with meta.entities: text, type, start and end token offsets."),
    features: FeaturesOption = None,
    image_dir: ImageDirOption = None,
    images: PostImagesOption = PostImages.ALL,
    seed: ImageSeedOption = None,
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Posts per forward pass."),
    device: DeviceOption = DEFAULT_DEVICE,
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stderr."),
) -> None:
    """Label posts with a saved model: a dataset file (written back in its format), raw text or a token file.

    Raw posts get the ids line-N (the line they are on), a token file's posts post-N; --image-dir finds their
    images by those ids (line-3.jpg).

    Examples:

        xl predict runs/umt-en-zh-tgt_only-seed460 --input posts.txt --jsonl posts.entities.jsonl

        xl predict --model runs/umt-en/best --input data/twitter2015/test.txt --output pred.txt --features data/features/resnet152 --image-dir data/twitter2015/images

        xl predict -m runs/acn-zh/best -i data/cmner/text/test.txt --images one --features data/features/vgg16 --image-dir data/cmner/images > pred.txt

        xl predict runs/acn-en-zh-tgt_only-seed444 --input tokens.txt --input-format tokens
    """
    from xlingual.evaluation.prediction import predict_posts

    prediction = predict_posts(
        _one_model(run_or_model, model), input, output, input_format=input_format.value if input_format else None, lang=lang,
        tokenizer=tokenizer, jsonl_path=jsonl, features=features, image_dir=image_dir, images=images.value, seed=seed,
        batch_size=batch_size, device=device,
    )
    report = prediction.report
    if output is None:
        typer.echo(prediction.text, nl=False)
    if as_json:
        typer.echo(json.dumps(dataclasses.asdict(report)), err=True)
        return
    entities = ", ".join(f"{k} {v}" for k, v in report.entities.items()) or "none"
    where = " -> " + " and ".join(p for p in (report.output, report.jsonl) if p) if report.output or report.jsonl else ""
    kind = f" ({report.format}, {report.lang})" if report.lang else ""
    typer.echo(f"{report.input}{kind}{where}: {report.samples} posts, {report.tokens} tokens labelled by {report.model_type}; entities: {entities}", err=True)


def register(app: typer.Typer) -> None:
    app.command("predict")(predict)
