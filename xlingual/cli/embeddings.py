"""``xl embeddings``: train fastText vectors, align two languages MUSE-style, evaluate word translation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from xlingual.cli._aliases import OUT_IS_OUTPUT
from xlingual.cli._options import DataDirOption, JsonOption
from xlingual.workspace import DEFAULT_DATA_DIR, AlignedPaths, DataDir
from xlingual.cli._option_fields import options_of
from xlingual.embeddings.options import DEFAULT_MAX_VOCAB, AlignOptions, TrainOptions
from xlingual.errors import ConfigError

embeddings_app = typer.Typer(no_args_is_help=True, help="Train, align and evaluate cross-lingual word embeddings.")


@embeddings_app.command("train", cls=OUT_IS_OUTPUT)
@options_of(TrainOptions)
def train(
    corpus: list[Path] = typer.Option(..., "--corpus", help="Raw text (one post per line) or dataset files (Twitter/CMNER/JSONL); repeat for several."),
    lang: str = typer.Option(..., "--lang", help="Language of the corpus (ISO 639-1); with --unit auto, zh is split into characters, any other language into words."),
    out: Optional[Path] = typer.Option(None, "--output", "-o", help="Output .vec (default: <data-dir>/embeddings/fasttext.<lang>.vec)."),
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    unit: str = typer.Option("auto", "--unit", help="auto (characters for languages written without spaces, words otherwise), char, or word (jieba for zh)."),
    options: TrainOptions = TrainOptions(),
    keep_case: bool = typer.Option(False, "--keep-case", help="Do not lower-case tokens (ACN lower-cases, so the default does too)."),
    save_bin: bool = typer.Option(False, "--save-bin", help="Also keep fastText's .bin model beside the .vec."),
    force: bool = typer.Option(False, "--force", help="Retrain even when the output was made from the same corpus and options."),
) -> None:
    """Train fastText skipgram vectors.

    Examples:

        xl embeddings train --corpus data/cmner/text/train.txt --lang zh

        xl embeddings train --corpus data/twitter2015/train.txt --lang en --output data/embeddings/fasttext.en.vec

        xl embeddings train --corpus weibo.txt --lang zh --unit word --dim 300
    """
    from xlingual.embeddings.train import train_vectors  # fastText and numpy: only when training

    target = out or DataDir(data_dir).monolingual_vectors(lang)
    path = train_vectors(corpus, target, lang, unit=unit, options=options, lowercase=not keep_case, save_bin=save_bin, force=force)
    typer.echo(f"{path}: written")


@embeddings_app.command("align", cls=OUT_IS_OUTPUT)
@options_of(AlignOptions)
def align_command(
    src_emb: Path = typer.Option(..., "--src-emb", help="Source-language vectors (.vec or .bin)."),
    tgt_emb: Path = typer.Option(..., "--tgt-emb", help="Target-language vectors (.vec or .bin)."),
    out: Optional[Path] = typer.Option(None, "--output", "-o", help="Output folder (default with --src-lang/--tgt-lang: <data-dir>/embeddings/aligned.<src>-<tgt>)."),
    dico: Optional[str] = typer.Option(None, "--dico", help="Seed dictionary ('src tgt' per line) for the supervised method, or 'identical'; omit for unsupervised."),
    src_lang: Optional[str] = typer.Option(None, "--src-lang", help="Source language, for the default --output."),
    tgt_lang: Optional[str] = typer.Option(None, "--tgt-lang", help="Target language, for the default --output."),
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    options: AlignOptions = AlignOptions(),
    max_vocab: int = typer.Option(DEFAULT_MAX_VOCAB, "--max-vocab", help="Read only the most frequent words."),
    as_json: JsonOption = False,
) -> None:
    """Map source vectors into the target space (MUSE: Procrustes + refinement, or adversarial + refinement).

    Examples:

        xl embeddings align --src-emb data/embeddings/fasttext.en.vec --tgt-emb data/embeddings/fasttext.zh.vec --src-lang en --tgt-lang zh --dico en-zh.txt

        xl embeddings align --src-emb en.vec --tgt-emb zh.vec --output aligned/ --dico identical

        xl embeddings align --src-emb en.vec --tgt-emb zh.vec --output aligned/   # unsupervised
    """
    if out is None:
        if not (src_lang and tgt_lang):
            raise ConfigError("--output: give an output folder, or --src-lang and --tgt-lang for <data-dir>/embeddings/aligned.<src>-<tgt>")
        out = DataDir(data_dir).aligned(src_lang, tgt_lang).root
    from xlingual.embeddings.align import align  # torch: imported only when aligning

    result = align(src_emb, tgt_emb, out, dico=dico, options=options, max_vocab=max_vocab)
    verdict = result.summary()
    if as_json:
        typer.echo(json.dumps({"out": str(out), **{key: verdict[key] for key in ("method", "criterion", "initial_criterion", "suspect", "suspect_reasons")}}))
    else:
        typer.echo(f"{out}: {result.method} alignment, criterion {result.initial_criterion:.4f} -> {result.criterion:.4f}")
    if result.suspect:
        typer.echo(f"WARNING: ALIGNMENT LOOKS FAILED ({result.suspect} check(s)): " + "; ".join(verdict["suspect_reasons"])
                   + f". Do not feed these vectors to a model; see {AlignedPaths(out).summary}.", err=True)


@embeddings_app.command("evaluate")
def evaluate(
    src_emb: Path = typer.Option(..., "--src-emb", help=f"Aligned source vectors (e.g. {AlignedPaths.SRC_VECTORS})."),
    tgt_emb: Path = typer.Option(..., "--tgt-emb", help=f"Aligned target vectors (e.g. {AlignedPaths.TGT_VECTORS})."),
    dico: Path = typer.Option(..., "--dico", help="Test dictionary, one 'src tgt' pair per line (MUSE format)."),
    max_vocab: int = typer.Option(DEFAULT_MAX_VOCAB, "--max-vocab", help="Read only the most frequent words."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (keys nn.p@1 ... csls.p@10, queries)."),
) -> None:
    """Word-translation precision@1/5/10 by nearest neighbour and CSLS (k=10), in percent.

    Examples:

        xl embeddings evaluate --src-emb data/embeddings/aligned.en-zh/vectors-src.vec --tgt-emb data/embeddings/aligned.en-zh/vectors-tgt.vec --dico en-zh.test.txt

        xl embeddings evaluate --src-emb a.vec --tgt-emb b.vec --dico test.txt --json
    """
    from xlingual.embeddings.evaluate import evaluate_files  # torch: imported only when evaluating

    scores = evaluate_files(src_emb, tgt_emb, dico, max_vocab)
    if as_json:
        typer.echo(json.dumps(scores.to_dict()))
        return
    table = Table(title=f"Word translation ({scores.queries} queries, {scores.skipped_pairs} pairs without vectors)")
    table.add_column("retrieval")
    for k in (1, 5, 10):
        table.add_column(f"P@{k}", justify="right")
    for name in ("nn", "csls"):
        table.add_row(name.upper(), *(f"{scores.precision[f'{name}.p@{k}']:.2f}" for k in (1, 5, 10)))
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(embeddings_app, name="embeddings", help="Train, align and evaluate cross-lingual word embeddings.")
