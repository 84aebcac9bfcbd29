"""Which kind of generation a checkpoint does, and a language model's prompts.

A checkpoint's model config names the tasks its family serves (`tasks`): translation models
translate; language models (family transformer_lm) continue prompts with the same search, the
prompt being a forced prefix (nmt.generation.decoding); a masked LM generates nothing (it fills in
`<mask>`: `nmt fill-mask`, `nmt.MaskFiller`).

A prompt is the line's pieces, without EOS. One longer than the model's target positions allow
(max_target_positions - 2, so that at least one token and EOS follow it) keeps its last pieces:
the continuation follows the prompt's end.
"""

from __future__ import annotations

from torch import nn

from nmt.errors import UserError

TRANSLATION, LANGUAGE_MODELING = "translation", "language_modeling"


def model_kind(loaded: list, path: str) -> str:
    """TRANSLATION or LANGUAGE_MODELING for the Loaded checkpoints of `path` (an ensemble is all one kind);
    a masked LM, or a mix of kinds, is a UserError."""
    kinds = []
    for item in loaded:
        tasks = getattr(item.model_cfg, "tasks", (TRANSLATION,))
        if TRANSLATION in tasks:
            kinds.append(TRANSLATION)
        elif LANGUAGE_MODELING in tasks:
            kinds.append(LANGUAGE_MODELING)
        else:
            raise UserError(
                f"{path} is a masked language model ({item.arch}): it fills in <mask> tokens and does not "
                "generate text; use nmt fill-mask (Python: nmt.MaskFiller)"
            )
    if len(set(kinds)) > 1:
        raise UserError(f"{path} mixes translation models and language models; an ensemble is one kind")
    return kinds[0]


def prompt_room(models: list[nn.Module]) -> int:
    """The most prompt pieces the models take: target positions - 2 (BOS before, one token and EOS after)."""
    return max(min(int(m.max_positions()[1]) for m in models) - 2, 0)


def cut_prompt(ids: list[int], most: int) -> tuple[list[int], bool]:
    """(the last `most` pieces of a prompt, whether it was cut)."""
    if len(ids) <= most:
        return ids, False
    return (ids[len(ids) - most :] if most else []), True
