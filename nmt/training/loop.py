"""`nmt train`: data dir -> model -> Trainer -> epochs, validation, checkpoints, stopping.

Determinism is by construction, which is what makes resume exact:
- the batches of an epoch are a pure function of (data, max_tokens, seed, epoch), and the
  checkpoint records how many of them this epoch has consumed;
- the torch RNG (dropout) is reseeded before every update from (seed, rank, update), so no
  RNG state has to survive a restart;
- interval log sums are saved too, so the first log line after a resume is the same line.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from typing import Iterator, Optional

import torch

from nmt import checkpoint as ckpt
from nmt import config as C
from nmt.data.dataset import (
    BatchDataset,
    batch_by_tokens,
    collate,
    copy_of_epoch,
    epoch_order,
    load_split,
    read_meta,
    shard,
    train_copies,
    updates_per_epoch,
)
from nmt.data.tokenizer import load_tokenizers, read_blobs
from nmt.device import process_settings
from nmt.errors import UserError
from nmt.models import arch_config, build_for_data, config_from_dict, load_weights
from nmt.training import dist
from nmt.training.control import StopFlag, save_dir_lock
from nmt.training.logs import Board, Meter, epoch_bar, format_line, memory_mb, param_summary, setup_logging
from nmt.training.optim import plateau_update
from nmt.training.trainer import Trainer

log = logging.getLogger("nmt.train")


@dataclass
class Progress:
    """Where training stands; saved in every checkpoint."""

    epoch: int = 1
    batch_offset: int = 0  # batches of this epoch already consumed (on this rank)
    best: Optional[float] = None
    bad_validations: int = 0  # for --patience
    plateau_bad: int = 0  # for reduce_lr_on_plateau
    train_seconds: float = 0.0  # wall time of the runs so far, as of the last save (for --stop-time-hours)


def _model_dim(model_cfg) -> int:
    return getattr(model_cfg, "decoder_embed_dim", None) or getattr(model_cfg, "decoder_hidden_size", 512)


class Run:
    """One invocation of `nmt train`: holds the pieces the loop needs."""

    def __init__(self, cfg: C.TrainConfig, model_overrides: dict[str, str]):
        self.cfg = cfg
        self.info, self.device = dist.setup(cfg.device)
        self.console = setup_logging(self.info.is_main)
        self.meta = read_meta(cfg.data)
        self.blobs = read_blobs(cfg.data, self.meta)
        self.src_tok, self.tgt_tok = load_tokenizers(self.meta, self.blobs)
        self.train_sets = train_copies(cfg.data, self.meta)  # the split, then any subword-sampled copies
        self.train_data = self.train_sets[0]
        self.valid_data = load_split(cfg.data, "valid", self.meta) if "valid" in self.meta.get("splits", {}) else None
        self.restore_path: Optional[str] = None
        self.restore = self._restore_payload()
        if self.restore is not None:
            self.arch = self.restore["arch"]
            self.model_cfg = config_from_dict(self.restore["family"], self.restore["model_config"])
            if model_overrides or cfg.arch != self.arch:
                log.warning("resuming: the architecture and sizes come from the checkpoint (%s)", self.arch)
        else:
            self.arch = cfg.arch
            self.model_cfg = arch_config(cfg.arch, model_overrides)
        torch.manual_seed(cfg.seed)  # identical initial weights on every rank
        model = build_for_data(self.model_cfg, self.meta)
        if self.restore is not None:  # e.g. a checkpoint trained on another data dir (vocabulary sizes)
            why = f"cannot resume from {self.restore_path}: its weights do not fit the model it describes "
            load_weights(model, self.restore["model"], why + f"with the vocabulary of {cfg.data}")
        self.trainer = Trainer(cfg, model, self.device, self.info, _model_dim(self.model_cfg))
        self.progress = Progress()
        self.meter = Meter(self.device)
        self.board = (
            Board(cfg.tensorboard_logdir or os.path.join(cfg.save_dir, "tensorboard"))
            if self.info.is_main
            else Board(None)
        )
        if self.restore is not None:
            self._load_train_state(self.restore.get("train_state"))
        self.set_batches = [
            batch_by_tokens(d.src.sizes, d.tgt.sizes, cfg.max_tokens, cfg.batch_size) for d in self.train_sets
        ]
        self.batches = self.set_batches[0]
        self.valid_batches = (
            []
            if self.valid_data is None
            else batch_by_tokens(self.valid_data.src.sizes, self.valid_data.tgt.sizes, cfg.max_tokens, cfg.batch_size)
        )
        # A schedule's horizon (cosine; read at each update): --max-update, or else the epoch limit.
        cfg.optim.max_update = cfg.max_update or cfg.max_epoch * updates_per_epoch(
            len(self.batches), cfg.update_freq, self.info.world_size
        )
        self.stop = StopFlag()
        self.clock = time.perf_counter  # a test may replace it
        self.seconds_before, self.clock_start = self.progress.train_seconds, self.clock()  # reset by run()

    def train_seconds(self) -> float:
        """Wall time of this run so far plus that of the runs it resumes."""
        return self.seconds_before + self.clock() - self.clock_start

    def _over_time(self, seconds: float) -> bool:
        """True when --stop-time-hours is set and `seconds` of training reach it."""
        return self.cfg.stop_time_hours > 0 and seconds >= self.cfg.stop_time_hours * 3600

    # ------------------------------------------------------------------ checkpoints
    def _restore_payload(self) -> Optional[dict]:
        if self.info.is_main and not self.cfg.no_save:  # only the lock holder may touch the save dir
            for stale in ckpt.clean_stale_temps(self.cfg.save_dir):
                log.info("removed %s, left by an interrupted checkpoint write", stale)
        path = self.cfg.restore_file
        if not os.path.isabs(path) and not os.path.exists(path):
            path = os.path.join(self.cfg.save_dir, path)
        if not os.path.exists(path):
            return None
        log.info("resuming from %s", path)
        self.restore_path = path
        return ckpt.load(path)

    def _load_train_state(self, state: Optional[dict]) -> None:
        if not state:
            return
        try:
            if "trained_model" in state:  # saved with --ema-decay: "model" was the average
                self.trainer.model.load_state_dict(state["trained_model"])
            self.trainer.load_state_dict(state["trainer"], reset_optimizer=self.cfg.reset_optimizer)
            if self.cfg.reset_optimizer:
                return
            self.progress = Progress(**state["progress"])
            self.meter.load_state(state["meter"])
        except (KeyError, TypeError, ValueError, RuntimeError) as e:  # a damaged or foreign training state
            raise UserError(
                f"cannot resume from {self.restore_path}: its training state does not fit this run "
                f"({type(e).__name__}: {str(e)[:160]}); --reset-optimizer starts a fresh one"
            ) from None

    def save(self, names: list[str]) -> None:
        """Write the full training checkpoint to the first name, copy it to the others (rank 0)."""
        if self.cfg.no_save or not names:
            return
        if self.info.is_main:
            t = self.trainer
            payload = ckpt.model_payload(t.eval_model, self.model_cfg, self.arch, self.meta, self.blobs)
            self.progress.train_seconds = self.train_seconds()
            payload["train_state"] = {
                "trainer": t.state_dict(),
                "progress": vars(self.progress).copy(),
                "meter": self.meter.state(),
                "train_config": C.asdict(self.cfg),
            }
            if t.ema_model is not None:  # "model" holds the average; resume needs the trained weights too
                payload["train_state"]["trained_model"] = {k: v.detach().cpu() for k, v in t.model.state_dict().items()}
            paths = [os.path.join(self.cfg.save_dir, n) for n in names]
            target = paths[0]
            try:
                ckpt.save(target, payload)
                for target in paths[1:]:
                    ckpt.copy(paths[0], target)
            except OSError as e:  # a full disk, a lost permission: the atomic writes left the old files as they were
                why = e.strerror or e
                raise UserError(f"cannot write {target}: {why}; the previous checkpoint is intact") from None
            self._prune()
        dist.barrier(self.info)

    def _prune(self) -> None:
        if self.cfg.keep_last_epochs >= 0:
            for p in ckpt.epoch_checkpoints(self.cfg.save_dir)[: -self.cfg.keep_last_epochs or None]:
                os.unlink(p)
        if self.cfg.keep_interval_updates >= 0:
            for p in ckpt.update_checkpoints(self.cfg.save_dir)[: -self.cfg.keep_interval_updates or None]:
                os.unlink(p)

    # ------------------------------------------------------------------ data
    def epoch_batches(self, epoch: int) -> list:
        batches = self.set_batches[copy_of_epoch(epoch, len(self.set_batches))]
        order = epoch_order(len(batches), epoch, self.cfg.seed)
        return shard([batches[i] for i in order], self.info.rank, self.info.world_size)

    def epoch_data(self, epoch: int):
        """The training copy that `epoch_batches(epoch)` index into."""
        return self.train_sets[copy_of_epoch(epoch, len(self.train_sets))]

    def iterate(self, batches: list, data=None) -> Iterator:
        """Collated batches of `data` (default: the training split itself)."""
        dataset = BatchDataset(data if data is not None else self.train_data, batches)
        if self.cfg.num_workers == 0:
            return (dataset[i] for i in range(len(dataset)))
        return iter(
            torch.utils.data.DataLoader(
                dataset,
                batch_size=None,
                shuffle=False,
                num_workers=self.cfg.num_workers,
                pin_memory=self.device.type == "cuda",
            )
        )

    # ------------------------------------------------------------------ validation
    def validate(self) -> Optional[dict]:
        """Loss/nll/ppl (and BLEU) on the valid split; updates best, patience and plateau state."""
        if self.valid_data is None:
            return None
        cfg = self.cfg
        meter = Meter(self.device)
        for idx in self.valid_batches[self.info.rank :: self.info.world_size]:
            stats = self.trainer.valid_step(collate(self.valid_data, idx))
            meter.add({**stats, "gnorm": torch.zeros(())})
        r = meter.reduce(self.info)
        values = {"loss": r["loss"], "nll_loss": r["nll_loss"], "ppl": r["ppl"]}
        if cfg.eval_bleu:
            values["bleu"] = dist.broadcast_object(self._valid_bleu() if self.info.is_main else None, self.info)
        metric = values[cfg.best_checkpoint_metric]
        maximize = cfg.best_checkpoint_metric == "bleu"
        p = self.progress
        if cfg.optim.lr_scheduler == "reduce_lr_on_plateau":
            shrink, p.plateau_bad = plateau_update(p.best, metric, p.plateau_bad, cfg.optim.lr_patience, maximize)
            if shrink:
                self.trainer.lr_scale *= cfg.optim.lr_shrink
        improved = p.best is None or (metric > p.best if maximize else metric < p.best)
        p.bad_validations = 0 if improved else p.bad_validations + 1
        if improved:
            p.best = metric
        values[f"best_{cfg.best_checkpoint_metric}"] = p.best
        values["improved"] = improved
        self._emit(f"epoch {p.epoch:03d} | valid on 'valid' subset", values, "valid")
        if cfg.attn_sample and self.info.is_main:
            self._attn_image()
        return values

    def _valid_bleu(self) -> float:
        import sacrebleu

        from nmt.config import GenerateConfig
        from nmt.generation.generate import translate_split

        gen = GenerateConfig(
            beam=self.cfg.eval_bleu_beam,
            max_tokens=self.cfg.max_tokens,
            max_len_a=self.cfg.eval_bleu_max_len_a,
            max_len_b=self.cfg.eval_bleu_max_len_b,
        )
        hyps = translate_split([self.trainer.eval_model], self.valid_data, self.tgt_tok, gen, self.device)
        refs = [self.tgt_tok.decode(self.valid_data.tgt[i].tolist()) for i in range(len(self.valid_data))]
        return float(sacrebleu.corpus_bleu(hyps, [refs]).score)

    def _attn_image(self) -> None:
        from nmt.viz.attention import cross_attention_image

        try:
            image = cross_attention_image(
                self.trainer.eval_model, self.src_tok, self.tgt_tok, self.cfg.attn_sample, self.device
            )
        except UserError as e:  # e.g. an architecture without attention: say so once, keep training
            log.warning("--attn-sample: %s", e)
            self.cfg.attn_sample = None
            return
        self.board.image("valid", "cross_attention", image, self.trainer.num_updates)

    def _emit(self, prefix: str, values: dict, board_tag: str) -> None:
        if self.info.is_main:
            shown = {k: v for k, v in values.items() if k != "improved"}
            log.info(format_line(prefix, shown, self.cfg.log_format))
            self.board.scalars(board_tag, shown, self.trainer.num_updates)

    # ------------------------------------------------------------------ the loop
    def run(self) -> int:
        """Train until a stopping rule fires; returns the process exit code."""
        cfg, p, t = self.cfg, self.progress, self.trainer
        self.seconds_before, self.clock_start = p.train_seconds, self.clock()
        if self.info.is_main:
            log.info("config: %s", json.dumps(C.asdict(cfg)))
            log.info("model %s: %s", self.arch, json.dumps(C.asdict(self.model_cfg)))
            log.info("parameters: %s", json.dumps(param_summary(t.model)))
        if self.info.is_main and self.restore is None and cfg.save_init_checkpoint and not cfg.no_save:
            init = os.path.join(cfg.save_dir, "checkpoint_init.pt")
            try:
                ckpt.save_model(init, t.model, self.model_cfg, self.arch, self.meta, self.blobs)
            except OSError as e:
                raise UserError(f"cannot write {init}: {e.strerror or e}") from None
        with self.stop.installed():
            while True:
                if self._done_before_epoch():
                    return 0
                batches = self.epoch_batches(p.epoch)
                status = self._train_epoch(batches)
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
        for batch in self.iterate(batches[p.batch_offset :], self.epoch_data(p.epoch)):
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
                self._save_after_validation(self.validate(), [])
                return 0
            if stats is None:  # a signal on some rank: every rank stops here, before this update
                log.info("stopping on signal at update %d; saving checkpoint_last.pt", t.num_updates)
                self.save(["checkpoint_last.pt"])
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
            values = self.validate() if validated else None
            named = bool(cfg.save_interval_updates) and n % cfg.save_interval_updates == 0
            if validated or named:  # a validation mid-epoch may find the best model: save it now
                self._save_after_validation(values, [f"checkpoint_{p.epoch}_{n}.pt"] if named else [])
            if validated and self._patience_exhausted():
                log.info("early stop: no improvement of %s in %d validations", cfg.best_checkpoint_metric, cfg.patience)
                return 0
            if cfg.max_update and n >= cfg.max_update:
                values = self.validate()
                self._save_after_validation(values, [])
                log.info("reached max_update %d", cfg.max_update)
                return 0
        return None

    def _end_of_epoch(self) -> bool:
        """Validate and save at the end of an epoch; True when training is over."""
        cfg, p = self.cfg, self.progress
        if self.meter.sums[-1].item() > 0:
            self._log_train(end_of_epoch=True)
        values = self.validate() if p.epoch % cfg.validate_interval == 0 else None
        finished_epoch = p.epoch
        p.epoch += 1
        p.batch_offset = 0
        self._save_after_validation(values, [f"checkpoint{finished_epoch}.pt"])
        if self._patience_exhausted():
            log.info("early stop: no improvement of %s in %d validations", cfg.best_checkpoint_metric, cfg.patience)
            return True
        return bool(cfg.max_epoch and p.epoch > cfg.max_epoch)

    def _save_after_validation(self, values: Optional[dict], names: list[str]) -> None:
        names = names + ["checkpoint_last.pt"]
        if values is not None and values["improved"]:
            names.append("checkpoint_best.pt")
        self.save(names)

    def _patience_exhausted(self) -> bool:
        return self.cfg.patience > 0 and self.progress.bad_validations >= self.cfg.patience

    def _log_train(self, end_of_epoch: bool = False) -> None:
        r = self.meter.reduce(self.info)
        t = self.trainer
        values = {**r, "num_updates": t.num_updates, "lr": t.lr(), "mem_mb": memory_mb(self.device)}
        tag = f"epoch {self.progress.epoch:03d}" + (" | end of epoch" if end_of_epoch else "")
        self._emit(tag, values, "train")
        self.meter.reset()


def train(cfg: C.TrainConfig, model_overrides: dict[str, str]) -> int:
    """Entry point of `nmt train`; returns the exit code (0 done, 130 stopped by SIGINT)."""
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
