"""Dataclass configs: the only home of defaults (and of every option's help text).

fields      `opt` (a field with its help), dict and flag-text conversion, `require`
models      the model families' configs and their range checks
data        `nmt preprocess` and `nmt toy-data`
train       `nmt train`: the run and the optimizer, and the checks of their flags
tasks       `nmt train`'s samples of the language-model and masked-LM tasks, and their check
generate    `nmt generate`, `nmt interactive`, `nmt score`, `nmt average-checkpoints`
lm          `nmt eval-lm`
visualize   `nmt visualize-attn`
mlm         `nmt fill-mask`
export      `nmt export`

Each command's flags are checked in one place: the `check_*` function beside its config.
"""

from nmt.config.data import TOY_PAIRS, PreprocessConfig, ToyDataConfig, check_preprocess, check_toy_data
from nmt.config.export import EXPORT_FORMATS, QUANTIZATIONS, ExportConfig, check_export
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
    require_finite,
)
from nmt.config.generate import (
    POST_PROCESS,
    QUANTIZE,
    AverageConfig,
    GenerateConfig,
    InteractiveConfig,
    ScoreConfig,
    check_average,
    check_generate,
    check_interactive,
    check_search,
)
from nmt.config.lm import EvalLMConfig, check_eval_lm
from nmt.config.mlm import FILL_MASK_FORMATS, FillMaskConfig, check_fill_mask
from nmt.config.models import (
    MODEL_CONFIGS,
    LSTMConfig,
    TransformerConfig,
    TransformerLMConfig,
    TransformerMLMConfig,
    check_model,
)
from nmt.config.tasks import SAMPLE_BREAK_MODES, LanguageModelConfig, check_language_model
from nmt.config.train import OptimConfig, TrainConfig, check_train
from nmt.config.visualize import FIGURE_FORMATS, VisualizeConfig, check_visualize

__all__ = [
    "AverageConfig",
    "EvalLMConfig",
    "EXPORT_FORMATS",
    "ExportConfig",
    "FIGURE_FORMATS",
    "FILL_MASK_FORMATS",
    "FillMaskConfig",
    "GenerateConfig",
    "InteractiveConfig",
    "LanguageModelConfig",
    "LSTMConfig",
    "MODEL_CONFIGS",
    "POST_PROCESS",
    "QUANTIZATIONS",
    "QUANTIZE",
    "OptimConfig",
    "PreprocessConfig",
    "SAMPLE_BREAK_MODES",
    "ScoreConfig",
    "TOY_PAIRS",
    "ToyDataConfig",
    "TrainConfig",
    "TransformerConfig",
    "TransformerLMConfig",
    "TransformerMLMConfig",
    "VisualizeConfig",
    "apply_overrides",
    "asdict",
    "check_average",
    "check_eval_lm",
    "check_export",
    "check_fill_mask",
    "check_generate",
    "check_interactive",
    "check_language_model",
    "check_model",
    "check_preprocess",
    "check_search",
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
    "require_finite",
]
