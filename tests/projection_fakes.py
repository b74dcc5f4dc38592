"""A deterministic fake translator with fault injection, shared by the projection and CLI tests.

It "translates" word by word (English words become two made-up CJK
characters, Chinese characters become made-up English words), keeps
placeholders, brackets, artefacts and punctuation, and, for a chosen share of
texts (picked by a hash of the text, so reruns see the same faults), damages
the output the way real MT does.
"""

from __future__ import annotations

import hashlib
import re

FAULTS: tuple[str, ...] = (
    "reorder", "drop", "duplicate", "fullwidth", "lowercase", "space", "hyphen", "cjk_brackets", "translate_word", "invent",
    "drop_marker",
)
RECOVERABLE: frozenset[str] = frozenset({"reorder", "fullwidth", "lowercase", "space", "hyphen", "cjk_brackets"})

_PIECE = re.compile(r"\[\d+\]|X\d+|https?://\S+|@\w+|#\w+|[\[\]]|[A-Za-z']+|\d+|[\u4e00-\u9fff]|\S")
_PLACEHOLDER = re.compile(r"^(X\d+|\[\d+\])$")
_CJK = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交受联什认六共权收证改清己美再采转更单风切打白教速花带安场身车例真务具万每目至达走积示议声报斗完类八离华名确才科张信马节话米整空元况今集温传土许步群广石记需段研界拉林律叫且究观越织装影算低持音众书布复容儿须际商非验连断深难近矿千周委素技备半办青省列习响约支般史感劳便团往酸历市克何除消构府称太准精值号率族维划选标写存候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属圆包火住调满县局照参红细引听该铁价严"


def _digest(text: str, salt: str = "") -> int:
    return int.from_bytes(hashlib.sha256((salt + text).encode("utf-8")).digest()[:8], "big")


def fake_word(word: str, tgt: str) -> str:
    """The fake translation of one word (en->zh) or one character (zh->en)."""
    value = _digest(word.lower())
    if tgt == "zh":
        return _CJK[value % len(_CJK)] + _CJK[(value // 997) % len(_CJK)]
    letters = "bcdfghjklmnprstvwz"
    vowels = "aeiou"
    return "".join(letters[(value >> (4 * i)) % len(letters)] + vowels[(value >> (4 * i + 2)) % len(vowels)] for i in range(3))


def fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


class FakeTranslator:
    """Word-by-word fake MT into ``tgt`` with ``rate`` of texts damaged by one of ``faults``."""

    def __init__(self, tgt: str, faults: tuple[str, ...] = (), rate: float = 0.0, seed: str = "") -> None:
        self.tgt = tgt
        self.faults = faults
        self.rate = rate
        self.seed = seed
        self.calls: list[list[str]] = []
        self.injected: dict[str, str] = {}  # text -> fault applied

    @property
    def cache_key(self) -> str:
        return f"fake:{self.tgt}:{','.join(self.faults)}:{self.rate}:{self.seed}"

    def translate(self, texts: list[str]) -> list[str]:
        self.calls.append(list(texts))
        return [self.translate_one(t) for t in texts]

    def clean(self, text: str) -> list[str]:
        out = []
        for piece in _PIECE.findall(text):
            if _PLACEHOLDER.match(piece) or piece in "[]" or piece[0] in "@#" or piece.startswith("http") or not (piece[0].isalpha()):
                out.append(piece)
            else:
                out.append(fake_word(piece, self.tgt))
        return out

    def join(self, pieces: list[str]) -> str:
        return ("" if self.tgt == "zh" else " ").join(pieces)

    def translate_one(self, text: str) -> str:
        pieces = self.clean(text)
        if self.faults and (_digest(text, self.seed) % 1000) < self.rate * 1000:
            fault = self.faults[_digest(text, self.seed + "#") % len(self.faults)]
            changed = self._damage(pieces, fault)
            if changed is not None:
                self.injected[text] = fault
                pieces = changed
        return self.join(pieces)

    def _damage(self, pieces: list[str], fault: str) -> list[str] | None:
        holders = [i for i, p in enumerate(pieces) if _PLACEHOLDER.match(p)]
        marks = [i for i, p in enumerate(pieces) if p in "[]"]
        pieces = list(pieces)
        if fault == "drop_marker":
            if not marks:
                return None
            del pieces[marks[-1]]
            return pieces
        if fault == "cjk_brackets":
            if not any(p.startswith("[") or p in "[]" for p in pieces):
                return None
            return [p.replace("[", "【").replace("]", "】") for p in pieces]
        if not holders:
            return None
        first = holders[0]
        if fault == "reorder":
            if len(holders) < 2:
                return None
            last = holders[-1]
            pieces[first], pieces[last] = pieces[last], pieces[first]
        elif fault == "drop":
            del pieces[first]
        elif fault == "duplicate":
            pieces.insert(first, pieces[first])
        elif fault == "fullwidth":
            pieces[first] = fullwidth(pieces[first])
        elif fault == "lowercase":
            pieces[first] = pieces[first].lower()
        elif fault == "space":
            pieces[first] = re.sub(r"(\D)(\d)", r"\1 \2", pieces[first], count=1)
        elif fault == "hyphen":
            if not pieces[first].startswith("X"):
                return None
            pieces[first] = "X-" + pieces[first][1:]
        elif fault == "translate_word":
            pieces[first] = ("叉" if self.tgt == "zh" else "cross") + re.sub(r"\D", "", pieces[first])
        elif fault == "invent":
            pieces.append(pieces[first][0] + "99" if pieces[first].startswith("X") else "[99]")
        return pieces
