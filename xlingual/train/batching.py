"""The order a stage visits its training posts: shuffled as one pool, or in batches of one language.

Both orders depend only on ``(seed, epoch)``, so a resumed epoch replays the
same batches without saving the sampler. ``mixed`` is the reference code's
(and every single-language run's) order. ``by_language`` serves the
multilingual settings: each batch holds posts of one language and the
languages take turns; docs/training.md says which of the two the shipped
``joint`` configs use and why.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler


def _generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 100_003 + epoch)


class EpochShuffleSampler(Sampler[int]):
    """A permutation that depends only on (seed, epoch): resumable without saving the sampler."""

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        return iter(torch.randperm(self.size, generator=_generator(self.seed, self.epoch)).tolist())

    def __len__(self) -> int:
        return self.size


class LanguageBatchSampler(Sampler[list[int]]):
    """Batches of posts of one language, the languages taking turns (a batch sampler: it yields lists of indices).

    Each language's posts are reshuffled every epoch and cut into batches of
    ``batch_size``; a language's last batch may be short, never mixed. When
    one language runs out of batches, the other's remaining batches follow.
    """

    def __init__(self, langs: Sequence[str], batch_size: int, seed: int) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be positive")
        self.langs = list(langs)
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _per_language(self) -> list[list[list[int]]]:
        by_lang: dict[str, list[int]] = {}
        for index, lang in enumerate(self.langs):
            by_lang.setdefault(lang, []).append(index)
        generator = _generator(self.seed, self.epoch)
        batches = []
        for lang in sorted(by_lang):
            indices = by_lang[lang]
            order = [indices[i] for i in torch.randperm(len(indices), generator=generator).tolist()]
            batches.append([order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)])
        first = int(torch.randint(len(batches), (1,), generator=generator)) if batches else 0
        return batches[first:] + batches[:first]

    def __iter__(self) -> Iterator[list[int]]:
        queues = self._per_language()
        while any(queues):
            for queue in queues:
                if queue:
                    yield queue.pop(0)

    def __len__(self) -> int:
        return sum(len(queue) for queue in self._per_language())


def loader_arguments(langs: Sequence[str], batch_size: int, seed: int, batching: str = "mixed") -> dict[str, object]:
    """The DataLoader arguments that order a stage's training posts (``batching``: one of the config's ``BATCHING``).

    ``langs`` holds each training post's language, in order.
    """
    if batching == "by_language":
        return {"batch_sampler": LanguageBatchSampler(langs, batch_size, seed)}
    if batching != "mixed":
        raise ValueError(f"unknown batching '{batching}'")
    return {"sampler": EpochShuffleSampler(len(langs), seed), "batch_size": batch_size}


__all__ = ["EpochShuffleSampler", "LanguageBatchSampler", "loader_arguments"]
