"""``xl translate``: translate an annotated dataset and project its labels (SPAN-placeholder method)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from xlingual.devices import DEFAULT_DEVICE
from xlingual.cli._options import (
    DataDirOption, DatasetsOption, DeviceOption, FormatOption, GpusPerWorkerOption, JsonOption, RayOption, WorkersOption, format_name,
)
from xlingual.workspace import DEFAULT_DATA_DIR, PREVIEW_NAME, DataDir, TranslationFolder
from xlingual.errors import ConfigError
from xlingual.lock import output_lock
from xlingual.projection.corpus import CACHE_NAME, ProjectionSettings, read_input_files, read_source_dataset, source_dataset
from xlingual.projection.preview import DEFAULT_PREVIEW_POSTS
from xlingual.projection.project import STRATEGIES, parse_strategies
from xlingual.translate.base import DecodingOptions
from xlingual.scale.runtime import RaySettings, ray_session
from xlingual.scale.translate import DEFAULT_SHARD_SIZE, load_and_translate_corpus
from xlingual.translate.factory import Backend, ComputeDtype, check_direction, default_model, parse_device_index

EPILOG = """
Examples:

    xl translate --src en --tgt zh                      # writes data/translated/twitter2015.en-zh.opus-mt-en-zh/

    xl translate --dataset twitter2017 --tgt de         # any dataset, any pair: data/translated/twitter2017.en-de.opus-mt-en-de/

    xl translate --src zh --tgt en --model facebook/nllb-200-distilled-600M

    xl translate --dataset twitter2015 --tgt fr --model ./easyproject-nllb --tokenizer-from facebook/nllb-200-distilled-600M

    xl translate --dataset twitter2015 --tgt ja --model facebook/nllb-200-distilled-600M --tokenizer my_seg:tokenize

    xl translate --src en --tgt zh --input data/twitter2015/train.txt --output out/tw15-zh/

    xl translate --src en --tgt zh --model ./my-marian --backend ctranslate2

    xl translate --src en --tgt zh --translator my_mt:make_translator --output out/tw15-zh-mine/

    xl translate --src en --tgt zh --backend ctranslate2 --ray --workers 2 --threads 1   # shards on a local Ray runtime

    xl translate --src en --tgt zh --backend ctranslate2 --device cuda --ray auto --gpus-per-worker 1   # on a Ray cluster
"""


def _print_report(report: dict, output_dir: Path) -> None:
    table = Table(title=f"Projection {report['src']} -> {report['tgt']} ({output_dir})")
    table.add_column("")
    names = list(report["files"])
    for name in names:
        table.add_column(name, justify="right")
    table.add_column("total", justify="right")
    columns = [report["files"][n] for n in names] + [report]

    def row(label: str, get) -> None:
        table.add_row(label, *[str(get(c)) for c in columns])

    row("samples in", lambda c: c["samples_in"])
    row("samples out", lambda c: c["samples_out"])
    row("projection rate", lambda c: c["projection_rate"])
    for etype in report["entities"]:
        row(f"{etype} before -> after", lambda c, t=etype: f"{c['entities'][t]['before']} -> {c['entities'][t]['after']}")
    row("untranslated entities", lambda c: c["entities_total"].get("untranslated", 0))
    for strategy in report["success_by_strategy"]:
        row(f"ok by {strategy}", lambda c, s=strategy: c["success_by_strategy"].get(s, 0))
    for reason in report["failures_by_reason"]:
        row(f"failed: {reason}", lambda c, r=reason: c["failures_by_reason"].get(r, 0))
    row("MT calls", lambda c: c["mt"].get("mt_calls", 0))
    row("cache hits", lambda c: c["mt"].get("cache_hits", 0))
    row("sentences/s", lambda c: c["sentences_per_s"])
    Console(stderr=False).print(table)


def translate(
    src: Optional[str] = typer.Option(None, "--src", help="Source language (ISO 639-1). With --dataset: its language (the default). Without: en means Twitter2015, zh CMNER."),
    tgt: str = typer.Option(..., "--tgt", help="Target language (ISO 639-1: de, fr, zh, ...) that the chosen MT covers."),
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="Dataset whose splits to translate (twitter2015, twitter2017, cmner, mmnerd, ...)."),
    input: Optional[list[Path]] = typer.Option(None, "--input", "-i", help="Dataset file(s) or folder(s) (their *.txt files) to translate (repeatable). Default: all splits of the source dataset in --data-dir."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output folder. Default with no --input: DATA_DIR/translated/DATASET.SRC-TGT.MODEL/."),
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    datasets: DatasetsOption = None,
    input_format: FormatOption = None,
    images: Optional[Path] = typer.Option(None, "--images", help="Image folder for --input files: attach each post's image names."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Hub id or local folder (Marian, NLLB-200, M2M-100). Default: Helsinki-NLP/opus-mt-SRC-TGT."),
    tokenizer_from: Optional[str] = typer.Option(None, "--tokenizer-from", help="Load the MT tokenizer from this hub id or folder (fine-tuned checkpoints with broken tokenizer files)."),
    tokenizer: Optional[str] = typer.Option(None, "--tokenizer", help="Target tokeniser MODULE:NAME, a function str -> list[str]; needed for languages without a built-in one (ja, th, ko, ...)."),
    backend: Backend = typer.Option(Backend.TRANSFORMERS, "--backend", help="The MT engine for --model."),
    translator_spec: Optional[str] = typer.Option(None, "--translator", help="Your own MT: MODULE:NAME, an object with translate(texts) or a zero-argument factory."),
    device: DeviceOption = DEFAULT_DEVICE,
    beam_size: int = typer.Option(4, "--beam-size", min=1, help="Beam size (1 = greedy)."),
    max_length: int = typer.Option(256, "--max-length", min=1, help="Most new tokens per sentence (also bounded by 2 x input length + 10 and by the model's position table)."),
    max_tokens: int = typer.Option(4096, "--max-tokens", min=1, help="Padded token budget of one MT batch."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Most sentences in one MT batch."),
    quantization: str = typer.Option("int8", "--quantization", help="CTranslate2 compute type when converting (int8, float32, ...)."),
    dtype: ComputeDtype = typer.Option(ComputeDtype.AUTO, "--dtype", help="transformers backend precision: auto (half on a GPU, float32 on a CPU), float32, bfloat16 (about 2x faster batches on CPUs with AMX/AVX512-BF16; can change translations), float16."),
    threads: int = typer.Option(0, "--threads", min=0, help="CPU threads (0: the cores this process is given): either backend decodes that many batches at once, one thread each."),
    strategies: str = typer.Option(",".join(STRATEGIES), "--strategies", help="Placeholder strategies to try, in order."),
    entity_context: bool = typer.Option(False, "--entity-context", help="Also translate each entity inside its sentence (bracketed); the read-back is kept only where it agrees with the stand-alone translation."),
    cache: Optional[Path] = typer.Option(None, "--cache", help=f"Translation cache file (default: OUTPUT/{CACHE_NAME})."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write the translation cache (no resume)."),
    as_json: JsonOption = False,
    preview: int = typer.Option(DEFAULT_PREVIEW_POSTS, "--preview", min=0, help=f"Projected posts (and left-out posts) shown in OUTPUT/{PREVIEW_NAME}, chosen reproducibly."),
    device_index: Optional[str] = typer.Option(None, "--device-index", help="CTranslate2 on several GPUs of this machine: comma-separated GPU ids (one model replica each), e.g. 0,1."),
    ray: RayOption = None,
    workers: WorkersOption = 0,
    gpus_per_worker: GpusPerWorkerOption = 0.0,
    shard_size: int = typer.Option(DEFAULT_SHARD_SIZE, "--shard-size", min=1, help="With --ray: samples per shard, the unit of work, resume and failure (a multiple of 256 keeps MT batches as one process forms them)."),
) -> None:
    """Translate an annotated dataset into any language and project its entity labels (SPAN-placeholder method).

    Writes NAME.txt (target language's native format), NAME.jsonl (with provenance),
    NAME.failures.jsonl, report.json and preview.html (open it in a browser). Interrupted runs resume from the translation cache.
    """
    if input:
        if dataset is not None:
            raise ConfigError("--input and --dataset: translate either files or a dataset's splits, not both")
        if src is None:
            raise ConfigError("--input needs --src LANG (the language of the files)")
        if output is None:
            raise ConfigError("--input needs --output DIR (where the translated files go)")
    else:
        dataset, src = source_dataset(dataset, src, data_dir, datasets)
    check_direction(src, tgt)
    strategy_list = parse_strategies(strategies)
    model_name = translator_spec or model or default_model(src, tgt)
    layout = DataDir(data_dir, datasets)
    settings = ProjectionSettings(src, tgt, strategy_list, entity_context, cache_path=cache, use_cache=not no_cache, model_name=model_name,
                                  preview_posts=preview, tokenizer=tokenizer)  # a target without a tokeniser, or a bad --tokenizer, fails here
    if dataset:
        settings = settings.for_dataset(layout.dataset(dataset))
    # bad input fails before a model loads
    inputs = (read_input_files(input, format_name(input_format), images, src) if input
              else read_source_dataset(data_dir, dataset, datasets))
    output = output or layout.translation(dataset, src, tgt, model_name)
    options = DecodingOptions(beam_size=beam_size, max_length=max_length, max_tokens=max_tokens, max_batch_size=batch_size)
    loader = dict(src=src, tgt=tgt, model=model, backend=backend.value, plugin=translator_spec, options=options, device=device,
                  quantization=quantization, work_dir=TranslationFolder(output).work_dir, threads=threads, device_index=parse_device_index(device_index),
                  dtype=dtype.value, tokenizer_from=tokenizer_from)
    ray_settings = RaySettings.from_options(ray, workers, gpus_per_worker, threads)
    with ray_session(ray_settings), output_lock(output):  # a named cluster is reached before the output folder is made; one writer per folder
        result = load_and_translate_corpus(inputs, output, loader, settings, ray_settings, shard_size)
    if as_json:
        typer.echo(json.dumps(result.report, indent=2, ensure_ascii=False))
    else:
        _print_report(result.report, output)
        for path in result.files.values():
            typer.echo(f"wrote {path}")
        typer.echo(f"preview: {TranslationFolder(output).preview}")


def register(app: typer.Typer) -> None:
    app.command("translate", epilog=EPILOG, help=(translate.__doc__ or "").strip())(translate)
