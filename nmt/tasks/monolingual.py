"""What the two monolingual tasks (language_modeling, masked_lm) share: the data directory read
for one rank, and the batches of its samples.

Batches are built once from the samples' lengths and cut and padded to few shapes
(`plan_batches`, nmt.data.shapes: --max-tokens, --batch-size, --pad-to-multiple, --row-sizes)
and each epoch's are ordered by (--seed, epoch) and sharded as translation's (`epoch_plan`), so
they are a pure function of (data, flags, seed, epoch, rank, world size).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from nmt.config import TrainConfig
from nmt.data.dataset import TokenArray, plan_batches, read_meta
from nmt.data.monolingual import load_text
from nmt.data.shapes import policy_of
from nmt.data.tokenizer import SentencePieceTokenizer, load_tokenizers, read_blobs
from nmt.errors import UserError
from nmt.tasks.checks import require_no_translation_flags, require_task_data
from nmt.training.dist import DistInfo


class MonolingualData:
    """A monolingual data directory for one rank of `task`: meta, blobs, tokenizer, train and valid text.

    Refuses (UserError) a data directory that is not for `task` and the flags that translate.
    """

    def __init__(self, cfg: TrainConfig, info: DistInfo, task: str):
        self.meta = read_meta(cfg.data)
        require_task_data(self.meta, task, cfg.data)
        require_no_translation_flags(cfg, task)
        if cfg.lm.tokens_per_sample > cfg.max_tokens:
            raise UserError(
                f"--tokens-per-sample {cfg.lm.tokens_per_sample} exceeds --max-tokens {cfg.max_tokens}: "
                "a sample would not fit in a batch"
            )
        self.blobs = read_blobs(cfg.data, self.meta)
        self.tok: SentencePieceTokenizer = load_tokenizers(self.meta, self.blobs)[0]
        self.vocab_size: int = self.meta["vocab_size"][self.meta["source_lang"]]
        self.train: TokenArray = load_text(cfg.data, "train", self.meta)
        has_valid = "valid" in self.meta["splits"]
        self.valid: Optional[TokenArray] = load_text(cfg.data, "valid", self.meta) if has_valid else None


def batches_of(lengths: np.ndarray, cfg: TrainConfig) -> list[np.ndarray]:
    """Token-budget batches of sample indices for samples of `lengths` tokens (EOS included)."""
    # plan_batches counts one EOS on top of the sizes it is given
    return plan_batches(np.asarray(lengths, dtype=np.int64) - 1, None, policy_of(cfg))


def rank_share(batches: list, info: DistInfo) -> list:
    """Every world_size-th batch from the rank on: this rank's share of a validation."""
    return batches[info.rank :: info.world_size]
