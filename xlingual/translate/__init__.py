"""Machine translation backends behind one protocol, :class:`Translator`.

* :class:`~xlingual.translate.hf.HFTranslator`: Marian and NLLB via transformers;
* :class:`~xlingual.translate.ct2.CTranslate2Translator`: the same models, converted;
* any object with ``translate(texts) -> texts`` (``xl translate --translator MODULE:NAME``);
* :class:`~xlingual.translate.cache.CachedTranslator`: a persistent cache around any of them.
"""

from xlingual.translate.base import DEFAULT_MODEL_PATTERN, DEFAULT_NLLB_MODEL, DecodingOptions, Translator, translator_cache_key
from xlingual.translate.cache import CachedTranslator, CacheStats, TranslationCache
from xlingual.translate.factory import default_model, load_translator

__all__ = [
    "DEFAULT_MODEL_PATTERN", "DEFAULT_NLLB_MODEL", "CacheStats", "CachedTranslator", "DecodingOptions", "TranslationCache",
    "Translator", "default_model", "load_translator", "translator_cache_key",
]
