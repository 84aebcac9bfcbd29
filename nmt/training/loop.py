"""`nmt train`: the epochs and the stopping rules, calling the parts that do the rest.

The parts: the task (nmt.tasks: the data dir's batches, the criterion, what validation reports),
the Trainer (one update), the Validator (nmt.training.validation) and the checkpoints
(nmt.training.checkpointing). The loop decides when each runs and when training ends:
--max-epoch, --max-update, --stop-time-hours (summed over resumed runs), --patience, and
SIGINT/SIGTERM (checkpoint_last.pt is saved at the next update boundary).

Determinism is by construction, which is what makes resume exact:
- the batches of an epoch are a pure function of (data, max_tokens, seed, epoch), and the
  checkpoint records how many of them this epoch has consumed;
- the torch RNG (dropout) is reseeded before every update from (seed, rank, update), so no
  RNG state has to survive a restart;
- interval log sums are saved too, so the first log line after a resume is the same line.

No config is changed while training runs: what the run derives (the lr horizon, the state of
the parts) lives in the parts.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Callable, Iterator, Optional

import torch

from nmt import config as C
from nmt.data.dataset import updates_per_epoch
from nmt.device import process_settings
from nmt.models import arch_config
from nmt.tasks import find_task
from nmt.tasks.checks import check_task_data, require_arch_for_task
from nmt.training import dist
from nmt.training.checkpointing import (
    Checkpoints,
    Progress,
    checkpoint_names,
    find_restore,
    load_restored_weights,
    model_config,
    restore_train_state,
)
from nmt.training.control import StopFlag, save_dir_lock
from nmt.training.logs import Board, Meter, epoch_bar, format_line, memory_mb, param_summary, setup_logging
from nmt.training.trainer import AMP_DTYPES, Trainer
from nmt.training.validation import Outcome, Validator, patience_exhausted

log = logging.getLogger("nmt.train")


def lr_horizon(max_update: int, max_epoch: int, batches_per_epoch: int, update_freq: int, world_size: int) -> int:
    """Where the decaying lr schedules end: --max-update, or else --max-epoch x the updates of one
    epoch (0 when neither is set)."""
    return max_update or max_epoch * updates_per_epoch(batches_per_epoch, update_freq, world_size)


def model_dim(model_cfg) -> int:
    """The width of the layers that predict (noam's scale): the decoder's, or an encoder-only model's."""
    for name in ("decoder_embed_dim", "encoder_embed_dim", "decoder_hidden_size"):  # the MLM has an encoder only
        if getattr(model_cfg, name, None):
            return getattr(model_cfg, name)
    return 512


def iterate(dataset: torch.utils.data.Dataset, num_workers: int = 0, pin_memory: bool = False) -> Iterator:
    """The items of a task's dataset in order: in this process, or from DataLoader workers."""
    if num_workers == 0:
        return (dataset[i] for i in range(len(dataset)))
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=None, shuffle=False, num_workers=num_workers, pin_memory=pin_memory
    )
    return iter(loader)


class Run:
    """One invocation of `nmt train`: the parts, assembled, and the loop over epochs."""

    def __init__(self, cfg: C.TrainConfig, model_overrides: dict[str, str]):
        self.cfg = cfg
        self.info, self.device = dist.setup(cfg.device)
        self.console = setup_logging(self.info.is_main)
        self.task = find_task(cfg.task)(cfg, self.info)
        self.restore = find_restore(cfg, self.info.is_main)
        self.arch, self.model_cfg = model_config(cfg, model_overrides, self.restore)
        torch.manual_seed(cfg.seed)  # identical initial weights on every rank
        model = self.task.build_model(self.model_cfg)
        if self.restore is not None:
            load_restored_weights(model, self.restore, cfg.data)
        horizon = lr_horizon(
            cfg.max_update, cfg.max_epoch, self.task.num_batches(1), cfg.update_freq, self.info.world_size
        )
        loss_fn = self.task.loss(model, AMP_DTYPES[cfg.amp])
        self.trainer = Trainer(
            cfg, model, self.device, self.info, model_dim(self.model_cfg), loss_fn=loss_fn, horizon=horizon
        )
        self.meter = Meter(self.device)
        board_dir = cfg.tensorboard_logdir or os.path.join(cfg.save_dir, "tensorboard")
        self.board = Board(board_dir if self.info.is_main else None)
        self.progress = Progress()
        if self.restore is not None:
            self.progress = restore_train_state(self.restore, self.trainer, self.meter, cfg.reset_optimizer)
        meta, blobs = self.task.meta, self.task.blobs
        self.checkpoints = Checkpoints(cfg, self.info, self.model_cfg, self.arch, meta, blobs)
        self.validator = Validator(cfg, self.task, self.info, self.device, self.board)
        self.stop = StopFlag()
        self.clock: Callable[[], float] = time.perf_counter  # a test may replace it
        self.seconds_before, self.clock_start = self.progress.train_seconds, self.clock()  # reset by run()

    def train_seconds(self) -> float:
        """Wall time of this run so far plus that of the runs it resumes."""
        return self.seconds_before + self.clock() - self.clock_start

    def _over_time(self, seconds: float) -> bool:
        """True when --stop-time-hours is set and `seconds` of training reach it."""
        return self.cfg.stop_time_hours > 0 and seconds >= self.cfg.stop_time_hours * 3600

    # ------------------------------------------------------------------ the loop
    def run(self) -> int:
        """Train until a stopping rule fires; returns the process exit code."""
        cfg, p, t = self.cfg, self.progress, self.trainer
        self.seconds_before, self.clock_start = p.train_seconds, self.clock()
        if self.info.is_main:
            log.info("config: %s", json.dumps(C.asdict(cfg)))
            log.info("model %s: %s", self.arch, json.dumps(C.asdict(self.model_cfg)))
            log.info("parameters: %s", json.dumps(param_summary(t.model)))
        if self.restore is None and cfg.save_init_checkpoint:
            self.checkpoints.save_init(t.model)
        with self.stop.installed():
            while True:
                if self._done_before_epoch():
                    return 0
                status = self._train_epoch(self.task.epoch_batches(p.epoch))
                if status is not None:
                    return status
                if self._end_of_epoch():
                    return 0

    def _done_before_epoch(self) -> bool:
        cfg, p = self.cfg, self.progress
        if cfg.max_update and self.trainer.num_updates >= cfg.max_update:
            log.info("reached max_update %d", cfg.max_update)
            return True
        if cfg.max_epoch and p.epoch > cfg.max_epoch:
            log.info("reached max_epoch %d", cfg.max_epoch)
            return True
        # A resumed run that is already over stops here. The time read from the checkpoint is the
        # same on every rank; clocks are not, so the run's own time is put to a vote at each update.
        if self._over_time(self.seconds_before):
            log.info("reached --stop-time-hours %g (%.0f s trained)", cfg.stop_time_hours, self.seconds_before)
            return True
        return False

    def _train_epoch(self, batches: list) -> Optional[int]:
        """Consume the rest of the epoch; returns an exit code if training must end inside it."""
        p = self.progress
        with epoch_bar(self.console, self.info.is_main) as bar:
            task = bar.add_task(f"epoch {p.epoch:03d}", total=len(batches), completed=p.batch_offset, status="")
            return self._train_batches(batches, lambda n, status: bar.update(task, advance=n, status=status))

    def _train_batches(self, batches: list, advance) -> Optional[int]:
        cfg, p, t = self.cfg, self.progress, self.trainer
        group: list = []
        remaining = len(batches) - p.batch_offset
        dataset = self.task.train_dataset(p.epoch, batches[p.batch_offset :])
        for batch in iterate(dataset, cfg.num_workers, self.device.type == "cuda"):
            group.append(batch)
            remaining -= 1
            if len(group) < cfg.update_freq and remaining > 0:
                continue
            torch.manual_seed(cfg.seed * 1_000_003 + self.info.rank * 7_919 + t.num_updates)
            seconds = self.train_seconds()
            stats = t.train_step(group, self.stop.signum is not None, self._over_time(seconds), seconds)
            if stats is None and t.stop_reason == "time":  # every rank stops here, before this update
                log.info(
                    "reached --stop-time-hours %g at update %d (%.0f s)",
                    cfg.stop_time_hours,
                    t.num_updates,
                    self.train_seconds(),
                )
                self._save_after_validation(self._validate(), [])
                return 0
            if stats is None:  # a signal on some rank: every rank stops here, before this update
                log.info("stopping on signal at update %d; saving checkpoint_last.pt", t.num_updates)
                self._save(checkpoint_names([], improved=False))
                return self.stop.exit_code()
            p.batch_offset += len(group)
            advance(len(group), f"update {t.num_updates}")
            group = []
            if "overflow" in stats:
                log.info("fp16 overflow: update skipped, loss scale lowered to %g", t.scaler.get_scale())
                continue
            self.meter.add(stats)
            n = t.num_updates
            if n % cfg.log_interval == 0:
                self._log_train()
            validated = bool(cfg.validate_interval_updates) and n % cfg.validate_interval_updates == 0
            outcome = self._validate() if validated else None
            named = bool(cfg.save_interval_updates) and n % cfg.save_interval_updates == 0
            if validated or named:  # a validation mid-epoch may find the best model: save it now
                self._save_after_validation(outcome, [f"checkpoint_{p.epoch}_{n}.pt"] if named else [])
            if validated and self._patience_exhausted():
                log.info("early stop: no improvement of %s in %d validations", cfg.best_checkpoint_metric, cfg.patience)
                return 0
            if cfg.max_update and n >= cfg.max_update:
                self._save_after_validation(self._validate(), [])
                log.info("reached max_update %d", cfg.max_update)
                return 0
        return None

    def _end_of_epoch(self) -> bool:
        """Validate and save at the end of an epoch; True when training is over."""
        cfg, p = self.cfg, self.progress
        if self.meter.sums[-1].item() > 0:
            self._log_train(end_of_epoch=True)
        outcome = self._validate() if p.epoch % cfg.validate_interval == 0 else None
        finished_epoch = p.epoch
        p.epoch += 1
        p.batch_offset = 0
        self._save_after_validation(outcome, [f"checkpoint{finished_epoch}.pt"])
        if self._patience_exhausted():
            log.info("early stop: no improvement of %s in %d validations", cfg.best_checkpoint_metric, cfg.patience)
            return True
        return bool(cfg.max_epoch and p.epoch > cfg.max_epoch)

    # ------------------------------------------------------------------ calls to the parts
    def _validate(self) -> Optional[Outcome]:
        return self.validator.validate(self.trainer, self.progress)

    def _save(self, names: list[str]) -> None:
        self.checkpoints.save(names, self.trainer, self.progress, self.meter, self.train_seconds())

    def _save_after_validation(self, outcome: Optional[Outcome], names: list[str]) -> None:
        self._save(checkpoint_names(names, improved=outcome is not None and outcome.improved))

    def _patience_exhausted(self) -> bool:
        return patience_exhausted(self.cfg.patience, self.progress.bad_validations)

    def _log_train(self, end_of_epoch: bool = False) -> None:
        r = self.meter.reduce(self.info)
        t = self.trainer
        values = {**r, "num_updates": t.num_updates, "lr": t.lr(), "mem_mb": memory_mb(self.device)}
        if self.info.is_main:
            tag = f"epoch {self.progress.epoch:03d}" + (" | end of epoch" if end_of_epoch else "")
            log.info(format_line(tag, values, self.cfg.log_format))
            self.board.scalars("train", values, t.num_updates)
        self.meter.reset()


def train(cfg: C.TrainConfig, model_overrides: dict[str, str]) -> int:
    """Entry point of `nmt train`; returns the exit code (0 done, 130 stopped by SIGINT)."""
    # an unknown --task, a data dir or an --arch not made for it fail here, before the save dir is touched
    find_task(cfg.task)
    check_task_data(cfg)
    require_arch_for_task(arch_config(cfg.arch), cfg.task, cfg.arch)
    info = dist.DistInfo(int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")))
    with process_settings(cfg.threads), save_dir_lock(cfg.save_dir, enabled=info.is_main and not cfg.no_save):
        run = Run(cfg, model_overrides)
        try:
            start = time.perf_counter()
            code = run.run()
            log.info("done in %.1f s, %d updates", time.perf_counter() - start, run.trainer.num_updates)
            return code
        finally:
            run.board.close()
            dist.cleanup(run.info)
            sys.stderr.flush()
