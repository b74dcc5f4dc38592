"""Placeholder forms, and finding them again in text that MT may have mangled.

A placeholder stands for one *slot* of a sentence (an entity or a protected
artefact) and carries the slot's number, so a translation that reorders the
entities still maps each back to its own. Numbers are zero-padded to the same
width within a sentence (``X01`` ... ``X12``), so no placeholder is a prefix
of another; the parser also reads whole digit runs, so ``X1`` is never found
inside ``X10``.

Forms, tried in this order by projection:

``numbered`` (``X1``)
    A capital letter glued to a number. Subword MT vocabularies keep such
    codes as one or two pieces and copy them (they look like model numbers or
    product codes, frequent in the parallel data behind opus-mt/NLLB); a
    bare word such as the paper's ``SPAN`` is sometimes translated ("跨度").
``bracketed`` (``[1]``)
    A number in square brackets, as in citations; the second choice because
    Chinese output often rewrites brackets (``【1】``, ``《1》``, ``（1）``),
    which the normaliser undoes.

Before matching, text is normalised character by character (NFKC folds
full-width letters and digits; CJK brackets become ASCII ones; dash variants
become ``-``) while remembering each character's original offset, so the
untouched text between placeholders is cut from the original translation.
Matching ignores case and tolerates spaces or a hyphen inside (``x 1``, ``X-1``).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_BRACKETS = str.maketrans({
    "【": "[", "】": "]", "《": "[", "》": "]", "〔": "[", "〕": "]", "「": "[", "」": "]", "『": "[", "』": "]",
    "〈": "[", "〉": "]", "〖": "[", "〗": "]", "（": "(", "）": ")", "‐": "-", "‑": "-", "–": "-", "—": "-", "－": "-",
})


@dataclass(frozen=True)
class NormalisedText:
    """``text`` normalised, with ``origin[i]`` the index in the original string of normalised char ``i``."""

    text: str
    origin: list[int]
    original: str

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """The original character span covering normalised ``[start, end)``."""
        if start >= len(self.origin):
            return len(self.original), len(self.original)
        last = self.origin[end - 1] + 1 if end > start else self.origin[start]
        return self.origin[start], last


def normalise(text: str) -> NormalisedText:
    chars: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        folded = unicodedata.normalize("NFKC", char.translate(_BRACKETS)).translate(_BRACKETS)
        for piece in folded:
            chars.append(piece)
            origin.append(index)
    return NormalisedText("".join(chars), origin, text)


@dataclass(frozen=True)
class PlaceholderForm:
    """One way of writing slot placeholders: how to render slot ``n`` and how to find it again."""

    name: str
    template: str
    pattern: re.Pattern[str]

    def render(self, number: int, slots: int) -> str:
        return self.template.format(str(number).zfill(len(str(slots))))

    def find(self, text: str) -> list[tuple[int, int, int]]:
        """``(start, end, number)`` of every placeholder-like match, in original-text coordinates.

        A letter form glued to a preceding digit (``0x1F``, ``10X2``) is part of some
        other code, not a placeholder, unless it directly follows another
        placeholder (``X1X2``, where MT dropped the space).
        """
        norm = normalise(text)
        found = []
        previous_end = -1
        for match in self.pattern.finditer(norm.text):
            glued = match.start() > 0 and norm.text[match.start()].isalpha() and norm.text[match.start() - 1].isdigit()
            if glued and match.start() != previous_end:
                continue
            previous_end = match.end()
            start, end = norm.original_span(match.start(), match.end())
            found.append((start, end, int(match.group(1))))
        return found


NUMBERED = PlaceholderForm("numbered", "X{}", re.compile(r"(?<![A-Za-z])X\s*-?\s*(\d+)(?![0-9])", re.IGNORECASE))
BRACKETED = PlaceholderForm("bracketed", "[{}]", re.compile(r"[\[(]\s*(\d+)\s*[\])]"))
FORMS: dict[str, PlaceholderForm] = {f.name: f for f in (NUMBERED, BRACKETED)}

_MARKED = re.compile(r"\[([^\[\]]*)\]")


def find_marked(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, content)`` of every ``[...]`` part (CJK brackets included), content in original characters."""
    norm = normalise(text)
    found = []
    for match in _MARKED.finditer(norm.text):
        start, end = norm.original_span(match.start(), match.end())
        inner_start, inner_end = norm.original_span(match.start(1), match.end(1)) if match.end(1) > match.start(1) else (start + 1, start + 1)
        found.append((start, end, text[inner_start:inner_end]))
    return found
