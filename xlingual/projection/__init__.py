"""Projection of annotated samples across languages (SPAN-placeholder method, verification, fallbacks).

Public entry points:

* :func:`project_samples` (samples + any :class:`~xlingual.translate.Translator`
  -> one :class:`ProjectionResult` per sample, projected or failed with a reason);
* :func:`translate_corpus` (whole files into an output folder with report and cache).
"""

from xlingual.projection.corpus import CorpusInput, CorpusResult, ProjectionSettings, read_input_files, read_source_dataset, translate_corpus
from xlingual.projection.project import STRATEGIES, Projector, ProjectionResult, project_samples
from xlingual.projection.report import ProjectionReport
from xlingual.translate.base import Translator

__all__ = [
    "STRATEGIES", "CorpusInput", "CorpusResult", "ProjectionReport", "ProjectionResult", "ProjectionSettings", "Projector",
    "Translator", "project_samples", "read_input_files", "read_source_dataset", "translate_corpus",
]
