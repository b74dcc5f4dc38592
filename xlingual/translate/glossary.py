"""A word-by-word glossary translator.

Not a substitute for machine translation. It exists so a pipeline can be run
end to end where no MT model is at hand (the demo on the embedded sample, a
smoke test of a new dataset), and it is the smallest example of a
``--translator MODULE:NAME`` plug-in. Phrases found in the glossary are
replaced (longest match first, case-insensitive); everything else —
placeholders, ``@user``, URLs, ``#hashtags``, unknown words — is copied.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from xlingual.errors import DataFormatError

_LATIN_END = re.compile(r"[A-Za-z0-9\]\)]$")
_LATIN_START = re.compile(r"^[A-Za-z0-9\[\(@#]")
SAMPLE_GLOSSARY = Path(__file__).resolve().parents[1] / "samples" / "glossary.en-zh.tsv"


@dataclass
class GlossaryTranslator:
    """Translates by looking up phrases of up to ``max_words`` words in ``glossary``."""

    glossary: dict[str, str]
    tgt: str
    max_words: int = 4

    @classmethod
    def from_file(cls, path: str | Path, tgt: str) -> "GlossaryTranslator":
        """Read a TSV of ``source<TAB>target`` lines (``#`` starts a comment line)."""
        path = Path(path)
        entries: dict[str, str] = {}
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip() or line.startswith("#"):
                continue
            source, sep, target = line.partition("\t")
            if not sep or not source.strip():
                raise DataFormatError(path, number, "expected 'source<TAB>target'")
            entries[source.strip().lower()] = target.strip()
        return cls(entries, tgt)

    @property
    def cache_key(self) -> str:
        digest = hashlib.sha256("\n".join(f"{k}\t{v}" for k, v in sorted(self.glossary.items())).encode()).hexdigest()[:16]
        return f"glossary:{self.tgt}:{digest}"

    def translate(self, texts: list[str]) -> list[str]:
        return [self._translate_one(text) for text in texts]

    def _translate_one(self, text: str) -> str:
        words = text.split()
        pieces: list[str] = []
        i = 0
        while i < len(words):
            for n in range(min(self.max_words, len(words) - i), 0, -1):
                phrase = " ".join(words[i : i + n]).lower()
                if phrase in self.glossary:
                    if self.glossary[phrase]:
                        pieces.append(self.glossary[phrase])
                    i += n
                    break
            else:
                pieces.append(words[i])
                i += 1
        return self._join(pieces)

    def _join(self, pieces: list[str]) -> str:
        if self.tgt != "zh":
            return " ".join(pieces)
        out = ""
        for piece in pieces:
            if out and _LATIN_END.search(out) and _LATIN_START.search(piece):
                out += " "
            out += piece
        return out


def sample_en_zh() -> GlossaryTranslator:
    """The glossary of the embedded sample (``--translator xlingual.translate.glossary:sample_en_zh``)."""
    return GlossaryTranslator.from_file(SAMPLE_GLOSSARY, "zh")
