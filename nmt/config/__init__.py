"""Dataclass configs: the only home of defaults (and of every option's help text).

fields      `opt` (a field with its help), dict and flag-text conversion, `require`
models      the model families' configs and their range checks
data        `nmt preprocess` and `nmt toy-data`
train       `nmt train`: the run and the optimizer, and the checks of their flags
generate    `nmt generate`, `nmt score`, `nmt average-checkpoints`
visualize   `nmt visualize-attn`

Each command's flags are checked in one place: the `check_*` function beside its config.
"""

from nmt.config.data import TOY_PAIRS, PreprocessConfig, ToyDataConfig, check_preprocess, check_toy_data
from nmt.config.fields import (
    apply_overrides,
    asdict,
    default_of,
    flag_fields,
    from_dict,
    help_of,
    opt,
    parse_value,
    require,
)
from nmt.config.generate import AverageConfig, GenerateConfig, ScoreConfig, check_generate
from nmt.config.models import MODEL_CONFIGS, LSTMConfig, TransformerConfig, check_model
from nmt.config.train import OptimConfig, TrainConfig, check_train
from nmt.config.visualize import FIGURE_FORMATS, VisualizeConfig, check_visualize

__all__ = [
    "AverageConfig",
    "FIGURE_FORMATS",
    "GenerateConfig",
    "LSTMConfig",
    "MODEL_CONFIGS",
    "OptimConfig",
    "PreprocessConfig",
    "ScoreConfig",
    "TOY_PAIRS",
    "ToyDataConfig",
    "TrainConfig",
    "TransformerConfig",
    "VisualizeConfig",
    "apply_overrides",
    "asdict",
    "check_generate",
    "check_model",
    "check_preprocess",
    "check_toy_data",
    "check_train",
    "check_visualize",
    "default_of",
    "flag_fields",
    "from_dict",
    "help_of",
    "opt",
    "parse_value",
    "require",
]
