"""Training configuration: the packaged paper configs, ``--set`` overrides, validation, the stored YAML.

The paper's hyper-parameters live in ``xlingual/train/packaged_configs/``: one base per
model plus small per-direction and per-setting deltas (:mod:`.packaged`),
resolved into one full mapping and validated by pydantic models
(:mod:`.schema`). ``--set key=value`` overrides any field (dotted keys reach
nested sections, e.g. ``model.hidden=100`` or ``target.lr=1e-4``; a bare
stage key such as ``lr=3e-5`` sets it in both stages; :mod:`.overrides`).
The resolved config is saved in the run folder, so a run can always be
repeated (:mod:`.load`).
"""

from xlingual.train.config.files import key_lines, read_yaml
from xlingual.train.config.load import DEFAULT_DIRECTION, DEFAULT_MODEL_TYPE, config_digest, config_yaml, load_config, save_config
from xlingual.train.config.overrides import apply_overrides, override_sources, parse_override
from xlingual.train.config.packaged import (DIRECTIONS, MODEL_TYPES, PAPER_SETTINGS, SETTINGS, layer_files,
                                            packaged_config_names, packaged_values, resolve_packaged)
from xlingual.train.config.schema import (CONFIG_VERSION, IMAGE_MODES, MIXED_PRECISION, OPTIMIZERS, DataConfig,
                                          StageConfig, TrainConfig, config_from_dict)

__all__ = [
    "CONFIG_VERSION", "DEFAULT_DIRECTION", "DEFAULT_MODEL_TYPE", "DIRECTIONS", "IMAGE_MODES", "MIXED_PRECISION",
    "MODEL_TYPES", "OPTIMIZERS", "PAPER_SETTINGS", "SETTINGS", "DataConfig", "StageConfig", "TrainConfig",
    "apply_overrides", "config_digest", "config_from_dict", "config_yaml", "key_lines", "layer_files", "load_config", "override_sources",
    "packaged_config_names", "packaged_values", "parse_override", "read_yaml", "resolve_packaged", "save_config",
]
