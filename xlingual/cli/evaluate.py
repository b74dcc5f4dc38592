"""``xl evaluate``: entity-level scores of saved predictions, a saved model, or two files (:mod:`xlingual.evaluation`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from xlingual.cli._options import FeaturesOption, FormatOption, ImageDirOption, ImageSeedOption, JsonOption, PostImagesOption, format_name
from xlingual.cli._scores import print_scores
from xlingual.features.choices import PostImages


def evaluate(
    run: Optional[Path] = typer.Option(None, "--run", help="A run folder: re-score its saved predictions."),
    gold: Optional[Path] = typer.Option(None, "--gold", help="Gold dataset file, scored against --pred (labels as written)."),
    pred: Optional[Path] = typer.Option(None, "--pred", help="Predicted dataset file with the same posts and tokens as --gold."),
    model: Optional[Path] = typer.Option(None, "--model", help="A model folder (a run's model/): predict --data and score it."),
    data: Optional[Path] = typer.Option(None, "--data", help="Dataset file to predict with --model."),
    format: FormatOption = None,
    features: FeaturesOption = None,
    image_dir: ImageDirOption = None,
    images: PostImagesOption = PostImages.ALL,
    seed: ImageSeedOption = None,
    as_json: JsonOption = False,
) -> None:
    """Entity-level P/R/F1 (conlleval and strict IOB2) from saved predictions, a saved model, or two files.

    Examples:

        xl evaluate --run runs/acn-en-zh-tgt_only-seed444

        xl evaluate --gold data/cmner/text/test.txt --pred pred.txt --json

        xl evaluate --model runs/acn-en-zh-tgt_only-seed444/model --data data/cmner/text/test.txt --features data/features/vgg16
    """
    from xlingual.evaluation.evaluate import evaluate_any

    result = evaluate_any(run=run, gold=gold, pred=pred, model=model, data=data, format=format_name(format), features=features,
                          image_dir=image_dir, images=images.value, seed=seed)
    if as_json:
        typer.echo(json.dumps(result.scores, indent=2))
    else:
        print_scores(result.title, result.table_scores)


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
