"""Tasks: what a kind of training data owns, so that nothing else in training needs to know it.

A task turns a data directory into datasets and batches, names the criterion, and says what
validation reports. `nmt train --task NAME` (TrainConfig.task) finds the task class in
`nmt.registry.TASKS` (`find_task`; an unknown name is a one-line UserError listing the valid
ones). The Trainer, checkpoints, logs, DDP, AMP and exact resume see only the interface below;
each task is one file that implements it and is imported here to register itself:

    translation.py         parallel text; the decoder's targets scored (the default)
    language_modeling.py   monolingual text in blocks; a decoder alone predicts each next token
    masked_lm.py           monolingual sentences, masked as BERT; an encoder alone fills them in
    monolingual.py         what the last two share (the data dir, batches); checks.py, the checks
                           every task makes (its data dir's meta.json lists it, its flags fit)

The interface (`Task`): a class constructed as `Task(cfg: TrainConfig, info: DistInfo)`, for one
rank of a run, with

    meta, blobs                    the data dir's meta.json and tokenizer files, which every
                                   checkpoint embeds (nmt.checkpoint)
    metrics                        the values validation can report; --best-checkpoint-metric and
                                   --eval-bleu ("bleu") must name one of them
    build_model(model_cfg)         the model a config describes, sized for this data
    loss(model, amp_dtype)         the criterion, as a callable the Trainer calls as
                                   `loss(net, model, batch, autocast) -> (loss_sum, stats)`
                                   (nmt.training.trainer.Loss); amp_dtype: None, bf16 or fp16
    num_batches(epoch)             the batches of epoch `epoch` over all ranks (the lr horizon)
    epoch_batches(epoch)           this rank's batches of that epoch, in training order: a pure
                                   function of (data, --max-tokens, --batch-size, --seed, epoch,
                                   rank, world size), as many on every rank, so that a resumed
                                   run skips exactly the batches the checkpoint says it consumed
    train_dataset(epoch, batches)  map-style dataset whose item i is batches[i] collated (run in
                                   DataLoader workers with --num-workers)
    valid_dataset()                this rank's share of the valid split as such a dataset, or
                                   None when the data has none

A batch is any object with `.to(device, non_blocking=...)` and `.ntokens`, the number of target
tokens its loss sums over (an update's gradient is divided by their total over all batches and
ranks). Stats are sums kept as tensors: loss, nll_loss, ntokens, nsentences.

A data directory's meta.json lists the tasks it serves ("tasks"; without it, translation): a task
refuses any other one when constructed, with one UserError line.

A task that reports "bleu" also offers `src_tok`, `tgt_tok` and `valid_data` (the valid pairs):
validation translates with them (--eval-bleu) and draws the --attn-sample sentence with them.
"""

from __future__ import annotations

from typing import Optional, Protocol

import torch

from nmt.registry import TASKS, lookup
from nmt.tasks.language_modeling import LanguageModelingTask
from nmt.tasks.masked_lm import MaskedLMTask
from nmt.tasks.translation import TranslationTask

__all__ = ["LanguageModelingTask", "MaskedLMTask", "Task", "TranslationTask", "find_task"]


class Task(Protocol):
    """The interface every task implements (see the module doc)."""

    meta: dict
    blobs: dict[str, bytes]
    metrics: tuple[str, ...]

    def build_model(self, model_cfg) -> torch.nn.Module: ...

    def loss(self, model: torch.nn.Module, amp_dtype: Optional[torch.dtype]): ...

    def num_batches(self, epoch: int) -> int: ...

    def epoch_batches(self, epoch: int) -> list: ...

    def train_dataset(self, epoch: int, batches: list) -> torch.utils.data.Dataset: ...

    def valid_dataset(self) -> Optional[torch.utils.data.Dataset]: ...


def find_task(name: str) -> type:
    """The task class registered under `name`; an unknown name raises UserError listing the valid ones."""
    return lookup(TASKS, name, "task")
