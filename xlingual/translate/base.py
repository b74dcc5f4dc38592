"""What a machine translator is, as far as the rest of xlingual cares.

Projection depends only on :class:`Translator` (one method), so any MT system
can be plugged in: the transformers backends here, CTranslate2, an API client
or a test double. Backends that want their output cached across runs also
expose ``cache_key``: a string that changes whenever the output could change
(model, direction, decoding options).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from enum import Enum
from typing import Protocol, runtime_checkable

DEFAULT_MODEL_PATTERN = "Helsinki-NLP/opus-mt-{src}-{tgt}"
"""The default model of a pair (the CMNER paper's opus-mt-en-zh and opus-mt-zh-en among them)."""
DEFAULT_NLLB_MODEL = "facebook/nllb-200-distilled-600M"


@runtime_checkable
class Translator(Protocol):
    """Anything that translates a list of texts, returning a list of the same length and order."""

    def translate(self, texts: list[str]) -> list[str]: ...


#: what :func:`submit` returns: call it to wait for the translations (in the order of the texts submitted)
PendingTranslations = Callable[[], list[str]]


def submit(translator: Translator, texts: list[str]) -> PendingTranslations:
    """Start translating ``texts``; the returned function waits for the translations, checks them and returns them.

    A translator that runs batches side by side (a ``submit`` method, e.g.
    CTranslate2 with several ``inter_threads``) starts them now, so texts
    submitted next run alongside and no list waits for the last batch of the one
    before it. Any other translator translates when the result is asked for,
    exactly as one ``translate`` call. Either way each list is batched on its
    own, as ``translate`` would batch it, so the outputs are the same.

    This is the one way into any translator (the cache and projection both
    call it), so it is where MT output is checked: whatever a backend or
    plug-in returns or raises, the caller gets a list of one string per text,
    or one :class:`~xlingual.errors.TranslatorError` line naming the
    translator (see :func:`checked_translations`).
    """
    texts = list(texts)
    method = getattr(translator, "submit", None)
    with _blamed_on(translator):
        pending = method(texts) if callable(method) else (lambda: translator.translate(texts))

    def result() -> list[str]:
        with _blamed_on(translator):
            outputs = pending()
        return checked_translations(translator, texts, outputs)

    return result


def checked_translations(translator: Translator, texts: list[str], outputs: object) -> list[str]:
    """``outputs`` if it is a list (or tuple) of exactly one ``str`` per text; else one line naming ``translator``.

    Nothing is coerced: ``str(None)`` would become an entity spelled ``None``
    and pass every later check, so a wrong type is refused here, before
    anything is cached or projected.
    """
    from xlingual.errors import TranslatorError

    name = translator_name(translator)
    if not isinstance(outputs, (list, tuple)):
        raise TranslatorError(f"translator {name} returned {_shown(outputs)} for {len(texts)} texts; expected a list of {len(texts)} strings")
    if len(outputs) != len(texts):
        raise TranslatorError(f"translator {name} returned {len(outputs)} results for {len(texts)} texts")
    wrong = next((i for i, out in enumerate(outputs) if not isinstance(out, str)), None)
    if wrong is not None:
        raise TranslatorError(f"translator {name} returned {_shown(outputs[wrong])} as result {wrong + 1} of {len(texts)}; expected a string")
    return list(outputs)


def _shown(value: object) -> str:
    """A wrong value as an error shows it: its type, and its text cut short."""
    text = repr(value)
    return f"{type(value).__name__} {text[:60] + '...' if len(text) > 60 else text}" if value is not None else "None"


@contextmanager
def _blamed_on(translator: Translator) -> Iterator[None]:
    """Any exception of the translator's own becomes one line naming it and the exception (errors of the library pass through)."""
    from xlingual.errors import TranslatorError, XlingualError

    try:
        yield
    except XlingualError:
        raise
    except Exception as err:
        message = " ".join(str(err).split())
        raise TranslatorError(f"translator {translator_name(translator)} raised {type(err).__name__}: {message[:300]}") from err


def translator_name(translator: Translator) -> str:
    """How errors name a translator: its ``label`` if it has a string one, a backend by backend and model, else ``MODULE:CLASS``.

    ``MODULE:CLASS`` is a plug-in's own spelling (``--translator mymod:Mt``);
    :class:`~xlingual.translate.cache.CachedTranslator` passes on the name of
    the translator it wraps.
    """
    label = getattr(translator, "label", None)
    if isinstance(label, str) and label:
        return label
    key = getattr(translator, "cache_key", None)
    if isinstance(key, str) and key.startswith("{"):
        try:
            fields = json.loads(key)
            return f"{fields['backend']} {fields['model']}"
        except (ValueError, KeyError, TypeError):
            pass
    cls = type(translator)
    return f"{cls.__module__}:{cls.__qualname__}"


class ComputeDtype(str, Enum):
    """The transformers backend's weights and arithmetic (``--dtype``).

    ``auto`` is half precision on a GPU (bfloat16 where supported) and float32
    elsewhere. ``bfloat16`` on a CPU with native bfloat16 matrix units (Intel
    AMX or AVX512-BF16) roughly halves the time of a batched decoding step;
    like any other precision it can change translations, so it is never chosen
    for the CPU by itself and is part of the translation cache key.
    """

    AUTO = "auto"
    FLOAT32 = "float32"
    BFLOAT16 = "bfloat16"
    FLOAT16 = "float16"


@dataclass(frozen=True)
class DecodingOptions:
    """Generation settings shared by every backend; part of the translation cache key.

    ``max_length`` caps new tokens; ``length_ratio`` bounds them further by the
    longest input of a batch (``ratio * input + 10``), which keeps a model that
    never emits end-of-sentence from running to ``max_length`` on short posts.
    ``max_tokens`` is the padded token budget of one batch, ``max_batch_size``
    a cap on sentences per batch.
    """

    beam_size: int = 4
    max_length: int = 256
    length_ratio: float = 2.0
    max_tokens: int = 4096
    max_batch_size: int = 64

    def new_token_limit(self, longest_input: int) -> int:
        return max(1, min(self.max_length, int(self.length_ratio * longest_input) + 10))

    def output_key(self) -> str:
        """The options that change output (batching does not), as stable JSON."""
        fields = asdict(self)
        fields.pop("max_tokens")
        fields.pop("max_batch_size")
        return json.dumps(fields, sort_keys=True)


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, e.g. a container's or taskset's share), not the machine's."""
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class ThreadLayout:
    """How a backend spends its CPU threads: ``batches`` decoded side by side, ``per_batch`` threads each.

    On the CPU the default is one batch per thread. Decoding a batch is a
    long chain of small matrix products; split over two threads each product
    waits on the slower thread (and on a busy machine, on a descheduled one),
    while two batches on one thread each never wait on each other. Measured in
    docs/translate.md. The batches are the same either way, so are the
    outputs. A GPU decodes one batch at a time unless asked otherwise.
    """

    batches: int
    per_batch: int

    def for_call(self, batches: int) -> "ThreadLayout":
        """The layout for a call of ``batches`` batches, for a backend that can re-plan its threads per call.

        Side by side only pays when the workers stay busy: with fewer than two
        batches per worker the last long batch runs alone on one thread while
        the others idle (measured: a 32-sentence call, one sentence batch,
        1.6x slower side by side than on both threads), so such a call runs
        its batches one at a time on all the threads.
        """
        if self.batches <= 1 or batches >= 2 * self.batches:
            return self
        return ThreadLayout(1, self.batches * self.per_batch)

    @classmethod
    def choose(cls, threads: int, device: str, batches: int | None = None) -> "ThreadLayout":
        """``threads`` 0: the cores this process is given; ``batches`` None: one per thread on the CPU, 1 elsewhere."""
        threads = threads if threads > 0 else available_cores()
        side_by_side = max(1, batches if batches is not None else (threads if device == "cpu" else 1))
        return cls(side_by_side, max(1, threads // side_by_side))


def too_long(translator: Translator, texts: list[str]) -> list[bool]:
    """Which ``texts`` the translator would have to cut (its optional ``too_long`` method; none without one).

    Projection never sends such a text: a cut sentence loses entities or
    placeholders silently, so its sample is reported as ``too_long`` instead.
    """
    check = getattr(translator, "too_long", None)
    if not callable(check) or not texts:
        return [False] * len(texts)
    with _blamed_on(translator):
        flags = [bool(f) for f in check(list(texts))]
    if len(flags) != len(texts):
        from xlingual.errors import TranslatorError

        raise TranslatorError(f"translator {translator_name(translator)}: too_long returned {len(flags)} flags for {len(texts)} texts")
    return flags


@dataclass(frozen=True)
class ModelLimits:
    """How many tokens a model can read and write, from its position table and its tokenizer.

    A Marian model indexes a learned/sinusoidal table of ``max_position_embeddings``
    rows for every source token and every decoder step (the decoder's start
    token included), so a longer input or generation fails with an
    ``IndexError`` deep inside torch. Inputs are truncated to
    ``max_input_tokens`` (and projection never sends a text that would be cut),
    and new tokens are capped at ``max_new_tokens``.
    """

    max_input_tokens: int
    max_new_tokens: int

    @classmethod
    def from_model(cls, max_positions: int | None, tokenizer_max: int | None, decoder_reserved: int = 1) -> "ModelLimits":
        """Limits from the config's ``max_position_embeddings`` and the tokenizer's ``model_max_length``.

        Tokenizers without a limit report a huge sentinel (about 1e30), which is
        ignored; ``decoder_reserved`` positions go to the decoder start token.
        """
        bounds = [int(b) for b in (max_positions, tokenizer_max) if isinstance(b, (int, float)) and 0 < b < 1_000_000]
        limit = min(bounds) if bounds else 1_000_000
        positions = int(max_positions) if isinstance(max_positions, (int, float)) and 0 < max_positions < 1_000_000 else 1_000_000
        return cls(max_input_tokens=max(1, limit), max_new_tokens=max(1, positions - decoder_reserved))

    def over(self, lengths: Sequence[int]) -> list[bool]:
        return [n > self.max_input_tokens for n in lengths]


def translator_cache_key(translator: Translator) -> str:
    """The translator's own ``cache_key`` if it has one, else its class path (user plug-ins)."""
    key = getattr(translator, "cache_key", None)
    if isinstance(key, str) and key:
        return key
    cls = type(translator)
    return f"{cls.__module__}.{cls.__qualname__}"


def length_sorted_batches(lengths: list[int], max_tokens: int, max_batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length whose padded size fits ``max_tokens``.

    Longest first, so an out-of-memory error shows up in the first batch rather
    than after an hour. A single text longer than the budget gets a batch of its own.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    current_max = 0
    for index in order:
        longest = max(current_max, lengths[index], 1)
        if current and (longest * (len(current) + 1) > max_tokens or len(current) >= max_batch_size):
            batches.append(current)
            current, longest = [], max(lengths[index], 1)
        current.append(index)
        current_max = longest
    if current:
        batches.append(current)
    return batches
