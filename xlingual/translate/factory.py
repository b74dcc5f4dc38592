"""One function that turns the CLI's choices (backend, model, plug-in) into a Translator."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

from xlingual.errors import ConfigError
from xlingual.translate.base import DEFAULT_MODELS, DEFAULT_NLLB_MODEL, LANGUAGES, DecodingOptions, Translator



class Backend(str, Enum):
    """The MT engines a Hugging Face model runs on (``--backend``)."""

    TRANSFORMERS = "transformers"
    CTRANSLATE2 = "ctranslate2"


BACKENDS: tuple[str, ...] = tuple(b.value for b in Backend)


def default_model(src: str, tgt: str, family: str = "marian") -> str:
    """The paper-style default: opus-mt for each direction, or NLLB-200 distilled when asked."""
    return DEFAULT_NLLB_MODEL if family == "nllb" else DEFAULT_MODELS[(src, tgt)]


def check_direction(src: str, tgt: str) -> None:
    for option, lang in (("--src", src), ("--tgt", tgt)):
        if lang not in LANGUAGES:
            raise ConfigError(f"{option} {lang}: choose from {', '.join(LANGUAGES)}")
    if src == tgt:
        raise ConfigError(f"--src and --tgt are both '{src}'; translation needs two languages")


def load_translator(src: str, tgt: str, model: str | None = None, backend: str = "transformers", plugin: str | None = None,
                    options: DecodingOptions | None = None, device: str = "auto", quantization: str = "int8",
                    work_dir: str | Path | None = None, threads: int = 0) -> Translator:
    """Build the translator the user asked for; a plug-in wins over ``model``/``backend``.

    ``threads`` (0: the cores this process is given) sets CTranslate2's
    ``intra_threads``; for transformers it sets torch's threads only when given.
    """
    check_direction(src, tgt)
    if plugin:
        from xlingual.translate.plugin import load_plugin_translator

        return load_plugin_translator(plugin)
    model = model or default_model(src, tgt)
    if backend == "transformers":
        from xlingual.translate.hf import HFTranslator

        if threads > 0:
            import torch

            torch.set_num_threads(threads)
        return HFTranslator.from_pretrained(model, src, tgt, options, device)
    if backend == "ctranslate2":
        from xlingual.translate.ct2 import CTranslate2Translator

        return CTranslate2Translator.from_pretrained(model, src, tgt, options, device, quantization, cache_dir=work_dir, threads=threads)
    raise ConfigError(f"--backend {backend}: choose from {', '.join(BACKENDS)}")
