"""One function that turns the CLI's choices (backend, model, plug-in) into a Translator."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

from xlingual.errors import ConfigError
from xlingual.translate.base import DEFAULT_MODEL_PATTERN, DEFAULT_NLLB_MODEL, ComputeDtype, DecodingOptions, Translator
from xlingual.translate.languages import check_language


class Backend(str, Enum):
    """The MT engines a Hugging Face model runs on (``--backend``)."""

    TRANSFORMERS = "transformers"
    CTRANSLATE2 = "ctranslate2"


BACKENDS: tuple[str, ...] = tuple(b.value for b in Backend)


def default_model(src: str, tgt: str, family: str = "marian") -> str:
    """The paper-style default: ``Helsinki-NLP/opus-mt-SRC-TGT`` for any pair, or NLLB-200 distilled when asked."""
    return DEFAULT_NLLB_MODEL if family == "nllb" else DEFAULT_MODEL_PATTERN.format(src=src, tgt=tgt)


def check_direction(src: str, tgt: str) -> None:
    """Both ISO 639-1 codes and two different languages (whether the model covers them is the backend's check)."""
    for option, lang in (("--src", src), ("--tgt", tgt)):
        check_language(option, lang)
    if src == tgt:
        raise ConfigError(f"--src and --tgt are both '{src}'; translation needs two languages")


def load_translator(src: str, tgt: str, model: str | None = None, backend: str = "transformers", plugin: str | None = None,
                    options: DecodingOptions | None = None, device: str = "auto", quantization: str = "int8",
                    work_dir: str | Path | None = None, threads: int = 0, device_index: list[int] | None = None,
                    dtype: str = "auto", tokenizer_from: str | None = None) -> Translator:
    """Build the translator the user asked for; a plug-in wins over ``model``/``backend``.

    ``threads`` (0: the cores this process is given) is how many batches
    either backend decodes at once on the CPU, one thread each
    (:class:`~xlingual.translate.base.ThreadLayout`).
    ``device_index`` (CTranslate2 only) puts one model replica on each listed GPU.
    ``dtype`` (transformers only, :class:`ComputeDtype`); CTranslate2's counterpart is ``quantization``.
    ``tokenizer_from`` (a hub id or folder) loads the tokenizer from there instead of from the model
    (fine-tuned checkpoints that ship broken tokenizer files).
    """
    check_direction(src, tgt)
    if plugin:
        if tokenizer_from:
            raise ConfigError("--tokenizer-from: a --translator plug-in loads its own tokenizer; use it with --model")
        from xlingual.translate.plugin import load_plugin_translator

        return load_plugin_translator(plugin)
    model = model or default_model(src, tgt)
    if dtype != ComputeDtype.AUTO.value and backend != "transformers":
        raise ConfigError(f"--dtype {dtype}: only the transformers backend takes it; CTranslate2's compute type is --quantization (int8, float32, ...)")
    if device_index is not None and backend != "ctranslate2":
        raise ConfigError("--device-index: only the ctranslate2 backend places replicas on several GPUs (add --backend ctranslate2)")
    if backend == "transformers":
        from xlingual.translate.hf import HFTranslator

        return HFTranslator.from_pretrained(model, src, tgt, options, device, threads=threads, dtype=dtype, tokenizer_from=tokenizer_from)
    if backend == "ctranslate2":
        from xlingual.translate.ct2 import CTranslate2Translator

        return CTranslate2Translator.from_pretrained(model, src, tgt, options, device, quantization, cache_dir=work_dir, threads=threads,
                                                   device_index=device_index, tokenizer_from=tokenizer_from)
    raise ConfigError(f"--backend {backend}: choose from {', '.join(BACKENDS)}")


def parse_device_index(text: str | None) -> list[int] | None:
    """``--device-index 0,1`` -> [0, 1] (None when not given)."""
    if text is None:
        return None
    try:
        ids = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        ids = []
    if not ids or any(i < 0 for i in ids) or len(set(ids)) != len(ids):
        raise ConfigError(f"--device-index {text}: expected distinct GPU ids separated by commas, e.g. 0,1")
    return ids
