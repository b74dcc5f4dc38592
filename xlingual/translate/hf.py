"""Marian and NLLB (M2M100) translation through transformers, with real batching.

Texts are sorted by token length and grouped under a padded-token budget
(:func:`~xlingual.translate.base.length_sorted_batches`), generated without
sampling, and put back in input order. Inputs and generations are clamped to
the model's position table and tokenizer limit (:class:`~xlingual.translate.base.ModelLimits`),
and ``too_long`` tells projection which texts would be cut. On a GPU the model runs in half
precision. NLLB and M2M-100 need the source language's code on the tokenizer
and the target's code forced as the first generated token, always (codes from
:mod:`xlingual.translate.languages`); multi-target Marian models such as
``opus-mt-en-zh`` need a ``>>cmn_Hans<<`` style token in front of every input,
which is found in the vocabulary (:func:`set_up_languages`, shared with CTranslate2).

``tokenizer_from`` loads the tokenizer from another hub id or folder
(fine-tuned checkpoints that ship broken tokenizer files, e.g. EasyProject's
NLLB checkpoints, need the original NLLB tokenizer). The translation cache key
names that tokenizer only when it is not the model's own: another tokenizer
changes the ids the model reads and the text decoded from its output, so the
translations may differ; without ``tokenizer_from``, or with the model's own
folder or id, the key is the one it always was and earlier caches still apply.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xlingual.devices import resolve_device
from xlingual.errors import ConfigError, ModelNotFoundError
from xlingual.progress import progress_bar
from xlingual.translate.base import ComputeDtype, DecodingOptions, ModelLimits, ThreadLayout, length_sorted_batches
from xlingual.translate.languages import marian_target_tokens, model_language_code
from xlingual.hub import ModelSource, resolve_model

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LanguageSetup:
    """How a model is told the direction: a Marian ``prefix`` before every input, or a ``target_token`` forced first (NLLB, M2M-100)."""

    prefix: str = ""
    target_token: str | None = None


def language_family(tokenizer, model_type: str, model: str) -> str | None:
    """``nllb``, ``m2m100`` (many-to-many models that need language codes) or None (Marian: one pair per model)."""
    name = type(tokenizer).__name__
    if name.startswith("Nllb"):
        return "nllb"
    if name.startswith("M2M100"):
        return "m2m100"
    if model_type != "m2m_100":
        return None
    vocab = tokenizer.get_vocab()
    if "eng_Latn" in vocab:
        return "nllb"
    if "__en__" in vocab:
        return "m2m100"
    raise ModelNotFoundError(f"{model}: an M2M100-type model whose tokenizer has neither NLLB (eng_Latn) nor M2M-100 (__en__) "
                             "language tokens; load a matching tokenizer with --tokenizer-from ID")


def set_up_languages(tokenizer, model_type: str, src_lang: str, tgt_lang: str, model: str) -> LanguageSetup:
    """Set the source language on an NLLB/M2M-100 ``tokenizer`` and name the target token to force, or find a Marian prefix.

    An ISO code the model family has no code for, or a code the tokenizer
    lacks, is a one-line error naming ``model``: translating without the forced
    target token gives mixed-language output.
    """
    family = language_family(tokenizer, model_type, model)
    if family is None:
        vocab = tokenizer.get_vocab()
        return LanguageSetup(prefix=next((t + " " for t in marian_target_tokens(tgt_lang) if t in vocab), ""))
    codes = {option: model_language_code(family, lang, model, option) for option, lang in (("--src", src_lang), ("--tgt", tgt_lang))}
    for option, code in codes.items():
        token = code if family == "nllb" else f"__{code}__"
        found = tokenizer.convert_tokens_to_ids(token)
        if found is None or found == tokenizer.unk_token_id:
            raise ModelNotFoundError(f"{option}: the tokenizer of {model} has no language token {token}; "
                                     "load the model's original tokenizer with --tokenizer-from ID")
    tokenizer.src_lang = codes["--src"]
    target = codes["--tgt"]
    return LanguageSetup(target_token=target if family == "nllb" else f"__{target}__")


def load_tokenizer(model_location: str, tokenizer_from: str | None, local_files_only: bool = True) -> tuple[Any, str | None]:
    """The tokenizer at ``model_location``, or the one ``tokenizer_from`` (hub id or folder) names.

    Also returns that other tokenizer's fingerprint for the cache key (None when it is the model's own).
    """
    from transformers import AutoTokenizer

    other = resolve_model(tokenizer_from, "tokenizer_config.json") if tokenizer_from else None
    if other is not None and other.location == model_location:
        other = None
    location, local = (other.location, other.local_files_only) if other is not None else (model_location, local_files_only)
    try:
        tokenizer = AutoTokenizer.from_pretrained(location, local_files_only=local)
    except (OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        hint = "" if tokenizer_from else " (a checkpoint with broken tokenizer files: load the original one with --tokenizer-from ID)"
        raise ModelNotFoundError(f"cannot load the tokenizer of '{tokenizer_from or model_location}': {first}{hint}") from None
    return tokenizer, (model_fingerprint(other) if other is not None else None)


def model_fingerprint(source: ModelSource) -> str:
    """Identifies the weights: the hub id, or for a folder its path plus the size and time of its files."""
    if not source.is_local_dir:
        return source.name
    folder = Path(source.location)
    digest = hashlib.sha256()
    for entry in sorted(folder.iterdir()):
        if entry.is_file():
            stat = entry.stat()
            digest.update(f"{entry.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return f"{folder}#{digest.hexdigest()[:16]}"


def source_lengths(tokenizer, inputs: list[str]) -> list[int]:
    """Token counts of ``inputs`` (special tokens included), uncut, so an over-long text can be recognised."""
    return [len(ids) for ids in tokenizer(inputs, truncation=False, verbose=False)["input_ids"]]


def _torch_dtype(name: str, device: str):
    """The torch dtype ``--dtype NAME`` asks for on ``device`` (None: the checkpoint's own, float32 for these models)."""
    import torch

    try:
        choice = ComputeDtype(name)
    except ValueError:
        raise ConfigError(f"--dtype {name}: choose from {', '.join(d.value for d in ComputeDtype)}") from None
    if choice is ComputeDtype.AUTO:
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return None
    if choice is ComputeDtype.BFLOAT16 and device == "cpu" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        logger.warning("--dtype bfloat16: this CPU has no native bfloat16 arithmetic, so it is emulated and slower than float32")
    return getattr(torch, name)


class HFTranslator:
    """A seq2seq translation model from transformers (Marian or NLLB) behind the Translator protocol.

    On the CPU, ``threads`` (0: the cores this process is given) decode that
    many batches side by side, one torch thread each (``inter_threads`` other
    than None overrides how many; see :class:`~xlingual.translate.base.ThreadLayout`).
    torch's thread count is changed only while a call runs and restored after it.
    """

    def __init__(self, model, tokenizer, src_lang: str, tgt_lang: str, options: DecodingOptions, device: str, fingerprint: str,
                 threads: int = 0, inter_threads: int | None = None, tokenizer_fingerprint: str | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.src_lang = src_lang
        self.tgt_lang = tgt_lang
        self.options = options
        self.device = device
        self.layout = ThreadLayout.choose(threads, device, inter_threads)
        self.model_type = getattr(model.config, "model_type", "")
        self.generate_kwargs: dict = {}
        self.limits = ModelLimits.from_model(getattr(model.config, "max_position_embeddings", None), getattr(tokenizer, "model_max_length", None))
        # new tokens are bounded per batch (max_new_tokens); a max_length from the model's
        # generation config would only trigger a warning on every batch
        model.generation_config.max_length = None
        languages = set_up_languages(tokenizer, self.model_type, src_lang, tgt_lang, fingerprint.split("#")[0])
        self.prefix = languages.prefix
        if languages.target_token is not None:
            self.generate_kwargs["forced_bos_token_id"] = tokenizer.convert_tokens_to_ids(languages.target_token)
        if self.prefix:
            logger.info("multi-target Marian model: prefixing inputs with %s", self.prefix.strip())
        precision = str(getattr(model, "dtype", "float32")).removeprefix("torch.")
        self.cache_key = json.dumps(
            {"backend": "transformers", "model": fingerprint, "src": src_lang, "tgt": tgt_lang, "options": options.output_key(),
             # another precision can change a translation; float32 stays out of the key so earlier caches still apply
             **({"dtype": precision} if precision != "float32" else {}),
             **({"tokenizer": tokenizer_fingerprint} if tokenizer_fingerprint else {})},
            sort_keys=True,
        )

    @classmethod
    def from_pretrained(cls, name_or_path: str, src_lang: str, tgt_lang: str, options: DecodingOptions | None = None, device: str = "auto",
                        threads: int = 0, inter_threads: int | None = None, dtype: str = "auto",
                        tokenizer_from: str | None = None) -> "HFTranslator":
        """Load a Marian, NLLB or M2M-100 model from a hub id or folder (fails fast when it is nowhere to be found).

        ``dtype``: ``auto`` (half precision on a GPU, float32 elsewhere), ``float32``, ``bfloat16`` or ``float16``.
        ``tokenizer_from``: load the tokenizer from this hub id or folder instead (see the module docstring).
        """
        options = options or DecodingOptions()
        source = resolve_model(name_or_path)  # before importing transformers: a missing model fails in a second
        device = resolve_device(device)
        from transformers import AutoModelForSeq2SeqLM

        tokenizer, tokenizer_fingerprint = load_tokenizer(source.location, tokenizer_from, source.local_files_only)
        try:
            model = AutoModelForSeq2SeqLM.from_pretrained(source.location, local_files_only=source.local_files_only,
                                                          dtype=_torch_dtype(dtype, device))
        except (OSError, ValueError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ModelNotFoundError(f"cannot load translation model '{name_or_path}': {first}") from None
        model.to(device).eval()
        return cls(model, tokenizer, src_lang, tgt_lang, options, device, model_fingerprint(source), threads, inter_threads, tokenizer_fingerprint)

    def too_long(self, texts: list[str]) -> list[bool]:
        """Which texts exceed the model's input limit (they would be cut)."""
        return self.limits.over(source_lengths(self.tokenizer, [self.prefix + t for t in texts])) if texts else []

    def translate(self, texts: list[str]) -> list[str]:
        if not texts:
            return []
        inputs = [self.prefix + t for t in texts]
        limit = self.limits.max_input_tokens
        lengths = [min(n, limit) for n in source_lengths(self.tokenizer, inputs)]
        batches = length_sorted_batches(lengths, self.options.max_tokens, self.options.max_batch_size)
        outputs: list[str] = [""] * len(texts)

        # Tokenising and detokenising stay on this thread: only generate runs side by side (a tokenizer's settings are shared state).
        encoded = [self.tokenizer([inputs[i] for i in batch], return_tensors="pt", padding=True, truncation=True, max_length=limit)
                   for batch in batches]

        def generate(job: tuple[list[int], Any]):
            import torch

            batch, tokens = job
            with torch.inference_mode():
                return self.model.generate(
                    **tokens.to(self.device),
                    num_beams=self.options.beam_size,
                    do_sample=False,
                    max_new_tokens=min(self.options.new_token_limit(max(lengths[i] for i in batch)), self.limits.max_new_tokens),
                    **self.generate_kwargs,
                )

        with progress_bar(total=len(texts), desc="translating", unit="sent", leave=False) as bar, self._decoding(len(batches)) as run:
            for batch, generated in zip(batches, run(generate, zip(batches, encoded))):  # in submission order, longest batch first
                for index, text in zip(batch, self.tokenizer.batch_decode(generated, skip_special_tokens=True)):
                    outputs[index] = text.strip()
                bar.update(len(batch))
        return outputs

    @contextmanager
    def _decoding(self, batches: int) -> Iterator[Callable[[Callable, Iterable], Iterator]]:
        """A ``map`` over batches: side by side on this translator's threads, or one after another.

        torch's thread count is process-wide, so it is set for the call and
        restored after it (a training run in the same process keeps its own).
        """
        import torch

        if self.device != "cpu":  # a GPU decodes one batch at a time; torch's CPU threads are left as they are
            yield map
            return
        layout = self.layout.for_call(batches)
        before = torch.get_num_threads()
        torch.set_num_threads(layout.per_batch)
        try:
            if layout.batches <= 1:
                yield map
            else:
                with ThreadPoolExecutor(layout.batches, thread_name_prefix="xl-translate") as pool:
                    yield pool.map
        finally:
            torch.set_num_threads(before)
