"""Training checkpoints: where a run resumes from, what it writes, which files it keeps.

The file format is nmt.checkpoint's (shared with generation); a training checkpoint adds
`train_state`, a dict of plain values and tensors:

    trainer        the Trainer's state_dict (optimizer, scaler, update counters, lr scale)
    progress       `Progress` as a dict: the epoch, the batches of it consumed, the books of
                   validation, the training time
    meter          the interval log sums, so the first log line after a resume is the same line
    train_config   the run's TrainConfig as a dict, for the record (nothing reads it back, so
                   checkpoints of any version resume whatever they hold there)
    trained_model  with --ema-decay only: the trained weights ("model" holds their average)

A run resumes from --restore-file (checkpoint_last.pt by default), looked up as given and then
in --save-dir; its architecture and sizes come from the checkpoint. Only rank 0 writes, and only
while it holds the save-dir lock (nmt.training.control): it alone removes the temp files that an
interrupted write left. Every write is atomic (temp file + rename); the other names of one save
are copies of the first, and pruning (--keep-last-epochs, --keep-interval-updates) runs after
the writes succeeded.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Optional

import torch

from nmt import checkpoint as ckpt
from nmt import config as C
from nmt.errors import UserError
from nmt.models import arch_config, config_from_dict, load_weights
from nmt.training import dist
from nmt.training.logs import Meter
from nmt.training.trainer import Trainer

log = logging.getLogger("nmt.train")

LAST, BEST, INIT = "checkpoint_last.pt", "checkpoint_best.pt", "checkpoint_init.pt"


@dataclass
class Progress:
    """Where training stands; saved in every checkpoint (its fields are the saved dict's keys)."""

    epoch: int = 1
    batch_offset: int = 0  # batches of this epoch already consumed (on this rank)
    best: Optional[float] = None
    bad_validations: int = 0  # for --patience
    plateau_bad: int = 0  # for reduce_lr_on_plateau
    train_seconds: float = 0.0  # wall time of the runs so far, as of the last save (for --stop-time-hours)


# ----------------------------------------------------------------------------- resuming
@dataclass(frozen=True)
class Restore:
    """The checkpoint a run resumes from."""

    path: str
    payload: dict


def find_restore(cfg: C.TrainConfig, is_main: bool) -> Optional[Restore]:
    """The checkpoint --restore-file names (as given, else in --save-dir), or None for a fresh run.

    On rank 0 (the lock holder) it first removes checkpoint temp files of an interrupted write."""
    if is_main and not cfg.no_save:
        for stale in ckpt.clean_stale_temps(cfg.save_dir):
            log.info("removed %s, left by an interrupted checkpoint write", stale)
    path = cfg.restore_file
    if not os.path.isabs(path) and not os.path.exists(path):
        path = os.path.join(cfg.save_dir, path)
    if not os.path.exists(path):
        return None
    log.info("resuming from %s", path)
    return Restore(path, ckpt.load(path))


def model_config(cfg: C.TrainConfig, overrides: dict[str, str], restore: Optional[Restore]) -> tuple[str, Any]:
    """(arch, model config) of the run: --arch with the model flags, or the checkpoint's when resuming."""
    if restore is None:
        return cfg.arch, arch_config(cfg.arch, overrides)
    arch = restore.payload["arch"]
    if overrides or cfg.arch != arch:
        log.warning("resuming: the architecture and sizes come from the checkpoint (%s)", arch)
    return arch, config_from_dict(restore.payload["family"], restore.payload["model_config"])


def load_restored_weights(model: torch.nn.Module, restore: Restore, data: str) -> None:
    """The checkpoint's weights into `model` (UserError when they do not fit, e.g. another vocabulary)."""
    why = f"cannot resume from {restore.path}: its weights do not fit the model it describes "
    load_weights(model, restore.payload["model"], why + f"with the vocabulary of {data}")


def restore_train_state(restore: Restore, trainer: Trainer, meter: Meter, reset_optimizer: bool) -> Progress:
    """Load the checkpoint's training state into `trainer` and `meter`; returns its Progress.

    With reset_optimizer only the weights and update counters carry over: a fresh optimizer,
    a fresh Progress and empty log sums. A state that does not fit is one UserError line."""
    state = restore.payload.get("train_state")
    if not state:
        return Progress()
    try:
        if "trained_model" in state:  # saved with --ema-decay: "model" was the average
            trainer.model.load_state_dict(state["trained_model"])
        trainer.load_state_dict(state["trainer"], reset_optimizer=reset_optimizer)
        if reset_optimizer:
            return Progress()
        progress = Progress(**state["progress"])
        meter.load_state(state["meter"])
        return progress
    except (KeyError, TypeError, ValueError, RuntimeError) as e:  # a damaged or foreign training state
        raise UserError(
            f"cannot resume from {restore.path}: its training state does not fit this run "
            f"({type(e).__name__}: {str(e)[:160]}); --reset-optimizer starts a fresh one"
        ) from None


# ----------------------------------------------------------------------------- writing
def checkpoint_names(names: list[str], improved: bool) -> list[str]:
    """The files of one save: `names` (an epoch's or an update's), then checkpoint_last.pt, and
    checkpoint_best.pt when the validation before it improved the best metric."""
    return [*names, LAST] + ([BEST] if improved else [])


def prune(save_dir: str, keep_last_epochs: int, keep_interval_updates: int) -> list[str]:
    """Delete all but the newest `keep_last_epochs` checkpointN.pt and `keep_interval_updates`
    checkpoint_E_U.pt files (-1 keeps all of them, 0 none); returns the deleted paths."""
    doomed = []
    if keep_last_epochs >= 0:
        doomed += ckpt.epoch_checkpoints(save_dir)[: -keep_last_epochs or None]
    if keep_interval_updates >= 0:
        doomed += ckpt.update_checkpoints(save_dir)[: -keep_interval_updates or None]
    for path in doomed:
        os.unlink(path)
    return doomed


class Checkpoints:
    """Writes the checkpoints of one run under --save-dir (rank 0; nothing with --no-save)."""

    def __init__(
        self, cfg: C.TrainConfig, info: dist.DistInfo, model_cfg: Any, arch: str, meta: dict, blobs: dict[str, bytes]
    ):
        self.cfg = cfg
        self.info = info
        self.model_cfg = model_cfg
        self.arch = arch
        self.meta = meta
        self.blobs = blobs

    def save(self, names: list[str], trainer: Trainer, progress: Progress, meter: Meter, train_seconds: float) -> None:
        """Write the full training checkpoint to the first name, copy it to the others, then prune.

        train_seconds: the training time so far, saved as progress.train_seconds. Every rank calls
        this (they meet at a barrier after rank 0 wrote)."""
        cfg = self.cfg
        if cfg.no_save or not names:
            return
        if self.info.is_main:
            payload = ckpt.model_payload(trainer.eval_model, self.model_cfg, self.arch, self.meta, self.blobs)
            payload["train_state"] = {
                "trainer": trainer.state_dict(),
                "progress": {**vars(progress), "train_seconds": train_seconds},
                "meter": meter.state(),
                "train_config": C.asdict(cfg),
            }
            if trainer.ema_model is not None:  # "model" holds the average; resume needs the trained weights too
                trained = {k: v.detach().cpu() for k, v in trainer.model.state_dict().items()}
                payload["train_state"]["trained_model"] = trained
            paths = [os.path.join(cfg.save_dir, n) for n in names]
            target = paths[0]
            try:
                ckpt.save(target, payload)
                for target in paths[1:]:
                    ckpt.copy(paths[0], target)
            except OSError as e:  # a full disk, a lost permission: the atomic writes left the old files as they were
                why = e.strerror or e
                raise UserError(f"cannot write {target}: {why}; the previous checkpoint is intact") from None
            prune(cfg.save_dir, cfg.keep_last_epochs, cfg.keep_interval_updates)
        dist.barrier(self.info)

    def save_init(self, model: torch.nn.Module) -> None:
        """checkpoint_init.pt: the initial weights, model part only (rank 0; nothing with --no-save)."""
        if not self.info.is_main or self.cfg.no_save:
            return
        path = os.path.join(self.cfg.save_dir, INIT)
        try:
            ckpt.save_model(path, model, self.model_cfg, self.arch, self.meta, self.blobs)
        except OSError as e:
            raise UserError(f"cannot write {path}: {e.strerror or e}") from None
