"""xlingual: cross-lingual multimodal named-entity recognition.

The pipeline, one sub-package per stage: ``data`` (records, formats, labels),
``translate`` (MT backends), ``projection`` (SPAN-placeholder label projection),
``embeddings`` (fastText vectors, MUSE-style alignment), ``features`` (VGG16 /
ResNet-152 image features), ``models`` (ACN, UMT), ``train`` (training,
evaluation, experiments, reports).
"""

from xlingual.data.sample import Sample
from xlingual.errors import XlingualError

__version__ = "0.1.0"
__all__ = ["Sample", "XlingualError", "__version__"]
