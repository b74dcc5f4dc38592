"""CTranslate2 backend: the same Marian/NLLB models, converted, for faster CPU/GPU decoding.

``--backend ctranslate2 --model X`` accepts either a converted folder
(``model.bin`` plus the tokenizer files) or a transformers folder / hub id,
which is converted once into ``cache_dir`` and reused. Tokenisation stays with
the transformers tokenizer so both backends see identical input pieces, and
the same limits apply (the original config's ``max_position_embeddings`` and
the tokenizer's ``model_max_length``). NLLB and M2M-100 get the source code on
the tokenizer and the target code as the target prefix of every input (the
same :func:`~xlingual.translate.hf.set_up_languages` as transformers), and
``tokenizer_from`` works as there.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path

from xlingual.devices import resolve_device
from xlingual.errors import ConfigError, ModelNotFoundError
from xlingual.translate.base import DecodingOptions, ModelLimits, PendingTranslations, ThreadLayout, available_cores, length_sorted_batches
from xlingual.translate.hf import load_tokenizer, model_fingerprint, set_up_languages, source_lengths
from xlingual.hub import resolve_model

logger = logging.getLogger(__name__)

TOKENIZER_FILES = (
    "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json", "vocab.json", "source.spm", "target.spm",
    "sentencepiece.bpe.model", "added_tokens.json", "config.json", "generation_config.json",
)


def _require_ctranslate2():
    try:
        import ctranslate2
    except ImportError:
        raise ConfigError("--backend ctranslate2 needs the ctranslate2 package (pip install 'xlingual[ctranslate2]')") from None
    return ctranslate2


def convert_to_ctranslate2(model_dir: str | Path, output_dir: str | Path, quantization: str = "int8") -> Path:
    """Convert a transformers Marian/NLLB folder into a CTranslate2 folder that also holds the tokenizer."""
    ctranslate2 = _require_ctranslate2()
    model_dir, output_dir = Path(model_dir), Path(output_dir)
    if (output_dir / "model.bin").exists():
        return output_dir
    files = [name for name in TOKENIZER_FILES if (model_dir / name).exists() and name != "config.json"]
    converter = ctranslate2.converters.TransformersConverter(str(model_dir), copy_files=files)
    # Each process converts into a staging folder of its own (Ray workers may convert into one cache at once) and the
    # first finished conversion is renamed into place; an interrupted one leaves no folder that looks converted.
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{output_dir.name}.", suffix=".converting", dir=output_dir.parent))
    try:
        converter.convert(str(staging), quantization=quantization, force=True)
        shutil.copy(model_dir / "config.json", staging / "hf_config.json")
        try:
            staging.rename(output_dir)
        except OSError:
            if not (output_dir / "model.bin").exists():  # not another process's finished conversion: a real error
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return output_dir


class CTranslate2Translator:
    """Translation with ``ctranslate2.Translator`` on a converted model folder.

    ``threads`` sets CTranslate2's ``intra_threads`` (0: the cores this process
    is given, not every core of the machine). ``whole_list`` hands every text of
    a call to one ``translate_batch`` with a token budget (``batch_type="tokens"``)
    and lets CTranslate2 sort and batch; then the new-token cap follows the
    longest text of the call instead of the longest of each batch.
    ``inter_threads`` > 1 runs that many batches at once (each with
    ``threads // inter_threads`` threads): xlingual's batches are all submitted
    asynchronously, or, with ``whole_list``, CTranslate2 holds every batch of the call.
    The default on the CPU is one batch per thread (``inter_threads = threads``,
    one thread each): the same batches, hence the same outputs, as one batch
    after another, and on two cores 2x faster than one batch on both.
    ``device_index`` lists the GPUs to place one replica each on (CTranslate2's
    own multi-GPU mode, ``inter_threads`` batches per GPU); with more than one,
    every call goes to CTranslate2 whole (``whole_list``), since replicas only
    run in parallel on batches submitted together.
    """

    def __init__(self, folder: str | Path, src_lang: str, tgt_lang: str, options: DecodingOptions | None = None,
                 device: str = "auto", compute_type: str = "default", threads: int = 0, whole_list: bool = False, inter_threads: int | None = None,
                 device_index: list[int] | None = None, tokenizer_from: str | None = None) -> None:
        ctranslate2 = _require_ctranslate2()

        self.folder = Path(folder)
        self.options = options or DecodingOptions()
        self.device = resolve_device(device, lambda: ctranslate2.get_cuda_device_count() > 0)
        self.threads = threads if threads > 0 else available_cores()
        self.device_index = list(device_index) if device_index else [0]
        if len(self.device_index) > 1 and self.device != "cuda":
            raise ConfigError(f"--device-index {','.join(map(str, self.device_index))}: several devices need --device cuda")
        self.whole_list = whole_list or len(self.device_index) > 1
        layout = ThreadLayout.choose(self.threads, self.device, inter_threads)  # a GPU: one batch at a time per replica
        self.inter_threads = layout.batches
        self.translator = ctranslate2.Translator(str(self.folder), device=device, device_index=self.device_index, compute_type=compute_type,
                                                 inter_threads=self.inter_threads, intra_threads=layout.per_batch if self.device == "cpu" else 0)
        self.tokenizer, tokenizer_fingerprint = load_tokenizer(str(self.folder.resolve()), tokenizer_from)
        config_path = self.folder / "hf_config.json"
        hf_config = json.loads(config_path.read_text()) if config_path.exists() else {}
        model_type = hf_config.get("model_type", "")
        # transformers spends the last step on a forced </s> when the config asks for one: match its length
        self.eos_reserved = 1 if hf_config.get("forced_eos_token_id") is not None else 0
        self.limits = ModelLimits.from_model(hf_config.get("max_position_embeddings"), getattr(self.tokenizer, "model_max_length", None))
        model_key = model_fingerprint(resolve_model(str(self.folder), "model.bin"))
        languages = set_up_languages(self.tokenizer, model_type, src_lang, tgt_lang, model_key.split("#")[0])
        self.prefix = languages.prefix
        self.target_prefix: list[str] | None = [languages.target_token] if languages.target_token else None
        self.cache_key = json.dumps(
            {"backend": "ctranslate2", "model": model_key,
             "compute_type": compute_type, "src": src_lang, "tgt": tgt_lang, "options": self.options.output_key(),
             **({"whole_list": True} if self.whole_list else {}),
             **({"tokenizer": tokenizer_fingerprint} if tokenizer_fingerprint else {})},
            sort_keys=True,
        )

    @classmethod
    def from_pretrained(cls, name_or_path: str, src_lang: str, tgt_lang: str, options: DecodingOptions | None = None,
                        device: str = "auto", quantization: str = "int8", cache_dir: str | Path | None = None,
                        threads: int = 0, whole_list: bool = False, device_index: list[int] | None = None,
                        tokenizer_from: str | None = None) -> "CTranslate2Translator":
        """Open a converted folder, or convert a transformers model (folder or cached hub id) first.

        ``tokenizer_from`` (hub id or folder) replaces the tokenizer copied into the converted folder.
        """
        path = Path(name_or_path).expanduser()
        if path.is_dir() and (path / "model.bin").exists():
            return cls(path, src_lang, tgt_lang, options, device, compute_type=quantization, threads=threads, whole_list=whole_list,
                       device_index=device_index, tokenizer_from=tokenizer_from)
        source = resolve_model(name_or_path)
        location = Path(source.location)
        if not source.is_local_dir:
            from huggingface_hub import snapshot_download

            location = Path(snapshot_download(source.name, local_files_only=source.local_files_only))
        if cache_dir is None:
            raise ModelNotFoundError(f"{name_or_path}: not a CTranslate2 folder (no model.bin) and no folder to convert it into")
        tag = model_fingerprint(source).replace("/", "_").replace("#", "_").strip("_")[-80:]
        converted = convert_to_ctranslate2(location, Path(cache_dir) / f"ct2-{tag}-{quantization}", quantization)
        return cls(converted, src_lang, tgt_lang, options, device, compute_type=quantization, threads=threads, whole_list=whole_list,
                   device_index=device_index, tokenizer_from=tokenizer_from)

    def too_long(self, texts: list[str]) -> list[bool]:
        """Which texts exceed the model's input limit (they would be cut)."""
        return self.limits.over(source_lengths(self.tokenizer, [self.prefix + t for t in texts])) if texts else []

    def translate(self, texts: list[str]) -> list[str]:
        return self.submit(texts)()

    def submit(self, texts: list[str]) -> PendingTranslations:
        """Tokenise and batch ``texts`` now; with several ``inter_threads`` their batches start at once (see :func:`~xlingual.translate.base.submit`).

        Batches submitted by later calls queue behind these and run as soon as
        a translation thread is free, so an entity list and a sentence list
        share the threads instead of the second waiting for the first's last batch.
        """
        if not texts:
            return lambda: []
        limit = self.limits.max_input_tokens
        pieces = [self.tokenizer.convert_ids_to_tokens(self.tokenizer(self.prefix + t, truncation=True, max_length=limit).input_ids) for t in texts]
        if self.whole_list:
            batches = [list(range(len(texts)))]
            batching = {"max_batch_size": self.options.max_tokens, "batch_type": "tokens"}
        else:
            batches = length_sorted_batches([len(p) for p in pieces], self.options.max_tokens, self.options.max_batch_size)
            batching = {}
        # With several translation threads, every batch is submitted at once (asynchronous results) so CTranslate2 runs
        # ``inter_threads`` of them in parallel; each batch is the same as when run one after another, so are its outputs.
        parallel = self.inter_threads > 1 and not self.whole_list

        def run(batch: list[int]):
            return self.translator.translate_batch(
                [pieces[i] for i in batch],
                target_prefix=[self.target_prefix] * len(batch) if self.target_prefix else None,
                beam_size=self.options.beam_size,
                max_input_length=limit,
                max_decoding_length=max(1, min(self.options.new_token_limit(max(len(pieces[i]) for i in batch)), self.limits.max_new_tokens) - self.eos_reserved),
                asynchronous=parallel,
                **batching,
            )

        started = [run(batch) for batch in batches] if parallel else None

        def collect() -> list[str]:
            outputs: list[str] = [""] * len(texts)
            for number, batch in enumerate(batches):
                results = [item.result() for item in started[number]] if started is not None else run(batch)
                for index, result in zip(batch, results):
                    tokens = result.hypotheses[0]
                    if self.target_prefix:
                        tokens = tokens[len(self.target_prefix):]
                    ids = self.tokenizer.convert_tokens_to_ids(tokens)
                    outputs[index] = self.tokenizer.decode(ids, skip_special_tokens=True).strip()
            return outputs

        return collect
