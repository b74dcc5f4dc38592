"""Twitter/Weibo artefacts that must come out of translation verbatim: URLs, @mentions, #hashtags, RT.

They are cut out before MT (replaced by placeholders like entities, but
labelled O) and put back unchanged, because MT models translate, split or
drop them, and a mention or URL carries no translatable meaning.
"""

from __future__ import annotations

import re

from xlingual.translate.languages import written_without_spaces

URL = r"(?:https?://|www\.)[A-Za-z0-9./?=&_%\-~:#+@!$,;*'()\[\]]*[A-Za-z0-9/=_\-~#+]"
_EN_ARTIFACT = re.compile(rf"{URL}|(?<![\w@])@\w+|(?<![\w#])#\w+|\bRT\b")
# Chinese text is joined without spaces, so \w would swallow the following characters:
# mentions are ASCII handles, hashtags are Weibo's #topic# (closed by a second #).
_ZH_ARTIFACT = re.compile(rf"{URL}|(?<![A-Za-z0-9_@])@[A-Za-z0-9_\-]+|#[^#\s]{{1,40}}#|\bRT\b")

PROTECTED_PATTERNS: list[str] = [URL, r"@\w+", r"#\w+"]
"""Patterns the Moses target tokeniser keeps whole (as Twitter2015 does), in every space-delimited language."""


def artifact_regex(lang: str) -> re.Pattern[str]:
    """Chinese's rules for every language written without spaces (``\\w`` would run on into the next words), English's otherwise."""
    return _ZH_ARTIFACT if written_without_spaces(lang) else _EN_ARTIFACT


def find_artifacts(text: str, lang: str) -> list[tuple[int, int]]:
    """Character spans of the artefacts in ``text`` (a source sentence in ``lang``)."""
    return [(m.start(), m.end()) for m in artifact_regex(lang).finditer(text)]


def is_artifact(text: str, lang: str) -> bool:
    """Whether ``text`` as a whole is one artefact (an entity such as ``@Nike`` is then copied, not translated)."""
    return artifact_regex(lang).fullmatch(text.strip()) is not None
