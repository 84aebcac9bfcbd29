"""Validation: the part the training loop calls at the end of an epoch and every
--validate-interval-updates.

One validation

1. measures loss, nll_loss and ppl of the eval model (the EMA with --ema-decay) over the task's
   valid split, each rank a share, the sums all-reduced;
2. with --eval-bleu, translates the valid split on rank 0 (nmt.generation.generate.translate_split,
   --eval-bleu-beam, --eval-bleu-max-len-a/b) and broadcasts its BLEU;
3. keeps the books of --best-checkpoint-metric: the best value so far, the validations in a row
   without improvement (--patience) and the plateau count of reduce_lr_on_plateau, whose verdict
   can shrink the Trainer's lr scale. `judge` keeps them: a pure function of the books so far and
   the new value; the Validator applies its verdict to Progress (saved in checkpoints);
4. logs one line and the TensorBoard scalars, then, with --attn-sample, draws the cross-attention
   of that sentence into TensorBoard (nmt.viz.attention.cross_attention_image). A model without
   cross-attention is said once and not drawn again (state of the Validator, not of the config).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional

import sacrebleu
import torch

from nmt.config import GenerateConfig, TrainConfig
from nmt.data.dataset import PairDataset
from nmt.errors import UserError
from nmt.generation.generate import translate_split
from nmt.tasks import Task
from nmt.training import dist
from nmt.training.checkpointing import Progress
from nmt.training.logs import Board, Meter, format_line
from nmt.training.optim import plateau_update
from nmt.training.trainer import Trainer
from nmt.viz.attention import cross_attention_image

log = logging.getLogger("nmt.train")


# ----------------------------------------------------------------------------- the books
@dataclass(frozen=True)
class Verdict:
    """What one validation decided."""

    improved: bool  # the metric beat the best so far (or is the first one)
    best: float  # the best value after this validation
    bad_validations: int  # validations in a row without improvement (--patience)
    plateau_bad: int  # reduce_lr_on_plateau's count of validations without improvement
    shrink_lr: bool  # reduce_lr_on_plateau: multiply the lr by --lr-shrink now


def judge(
    value: float,
    maximize: bool,
    best: Optional[float],
    bad_validations: int,
    plateau_bad: int,
    lr_patience: Optional[int],
) -> Verdict:
    """The books after a validation measured `value` of the best-checkpoint metric.

    best, bad_validations, plateau_bad: the books before it (best None: no validation yet);
    maximize: higher is better (bleu); lr_patience: reduce_lr_on_plateau's --lr-patience, or
    None when another schedule runs (the plateau count then stays as it is)."""
    shrink = False
    if lr_patience is not None:
        shrink, plateau_bad = plateau_update(best, value, plateau_bad, lr_patience, maximize)
    improved = best is None or (value > best if maximize else value < best)
    if improved:
        return Verdict(True, value, 0, plateau_bad, shrink)
    return Verdict(False, best, bad_validations + 1, plateau_bad, shrink)


def patience_exhausted(patience: int, bad_validations: int) -> bool:
    """--patience N (> 0): True once N validations in a row did not improve the best metric."""
    return patience > 0 and bad_validations >= patience


# ----------------------------------------------------------------------------- measurements
def valid_bleu(model: torch.nn.Module, pairs: PairDataset, tgt_tok, cfg: TrainConfig, device) -> float:
    """Corpus BLEU of `model`'s translations of `pairs` against their decoded references."""
    gen = GenerateConfig(
        beam=cfg.eval_bleu_beam,
        max_tokens=cfg.max_tokens,
        max_len_a=cfg.eval_bleu_max_len_a,
        max_len_b=cfg.eval_bleu_max_len_b,
    )
    hyps = translate_split([model], pairs, tgt_tok, gen, device)
    refs = [tgt_tok.decode(pairs.tgt[i].tolist()) for i in range(len(pairs))]
    return float(sacrebleu.corpus_bleu(hyps, [refs]).score)


@dataclass(frozen=True)
class Outcome:
    """One validation: the values logged (metrics, then best_METRIC) and whether the best improved."""

    values: dict
    improved: bool


class Validator:
    """Validation as the loop calls it: `validate(trainer, progress)` (every rank)."""

    def __init__(self, cfg: TrainConfig, task: Task, info: dist.DistInfo, device: torch.device, board: Board):
        wanted = [cfg.best_checkpoint_metric] + (["bleu"] if cfg.eval_bleu else [])
        missing = [m for m in wanted if m not in task.metrics]
        if missing:
            raise UserError(f"task {cfg.task!r} reports {', '.join(task.metrics)}; it has no {missing[0]!r}")
        self.cfg = cfg
        self.task = task
        self.info = info
        self.device = device
        self.board = board
        self.attn_sample = cfg.attn_sample  # set to None when the model cannot be drawn: said once

    def validate(self, trainer: Trainer, progress: Progress) -> Optional[Outcome]:
        """Measure, keep the books (in `progress` and trainer.lr_scale), log; None without a valid split."""
        dataset = self.task.valid_dataset()
        if dataset is None:
            return None
        cfg = self.cfg
        values = self._loss_metrics(trainer, dataset)
        if cfg.eval_bleu:
            bleu = valid_bleu(trainer.eval_model, self.task.valid_data, self.task.tgt_tok, cfg, self.device)
            values["bleu"] = dist.broadcast_object(bleu if self.info.is_main else None, self.info)
        metric = cfg.best_checkpoint_metric
        plateau = cfg.optim.lr_scheduler == "reduce_lr_on_plateau"
        v = judge(
            values[metric],
            metric == "bleu",
            progress.best,
            progress.bad_validations,
            progress.plateau_bad,
            cfg.optim.lr_patience if plateau else None,
        )
        if v.shrink_lr:
            trainer.lr_scale *= cfg.optim.lr_shrink
        progress.best, progress.bad_validations, progress.plateau_bad = v.best, v.bad_validations, v.plateau_bad
        values[f"best_{metric}"] = v.best
        if self.info.is_main:
            log.info(format_line(f"epoch {progress.epoch:03d} | valid on 'valid' subset", values, cfg.log_format))
            self.board.scalars("valid", values, trainer.num_updates)
            if self.attn_sample:
                self._attention_image(trainer)
        return Outcome(values, v.improved)

    def _loss_metrics(self, trainer: Trainer, dataset) -> dict:
        """loss, nll_loss (base 2) and ppl over this rank's valid batches, summed over all ranks."""
        meter = Meter(self.device)
        for i in range(len(dataset)):
            stats = trainer.valid_step(dataset[i])
            meter.add({**stats, "gnorm": torch.zeros(())})
        r = meter.reduce(self.info)
        return {"loss": r["loss"], "nll_loss": r["nll_loss"], "ppl": r["ppl"]}

    def _attention_image(self, trainer: Trainer) -> None:
        task = self.task
        try:
            image = cross_attention_image(trainer.eval_model, task.src_tok, task.tgt_tok, self.attn_sample, self.device)
        except UserError as e:  # e.g. an architecture without attention: say so once, keep training
            log.warning("--attn-sample: %s", e)
            self.attn_sample = None
            return
        self.board.image("valid", "cross_attention", image, trainer.num_updates)
