"""The Trainer: one optimizer update (forward, loss, backward, step) in every setting.

The same code path runs on CPU or CUDA, in one process or under DDP, in fp32, bf16 or fp16:

- an update consumes `update_freq` batches; DDP's gradient all-reduce runs only on the last
  one (`no_sync()` on the others);
- gradients are normalized by the number of target tokens of the whole update over all
  ranks. That total is known on the host before the forward passes (collate counted it), so
  one tiny all-reduce at the start of the update gives it, together with the "stop" flag of
  every rank, and each loss is scaled before backward: no extra pass over the gradients;
- fp16 uses a gradient scaler (an overflowing update is skipped and the scale lowered);
  bf16 and fp32 need none;
- a non-finite gradient norm (identical on every rank after the all-reduce) stops training
  before the optimizer step, so no corrupt weights can reach a checkpoint;
- the loss of a batch is the task's (nmt.tasks): a `Loss` given at construction, called with the
  forward pass's module and the autocast context, so the Trainer never looks inside a batch
  beyond its device copy and its target token count;
- the lr schedule's horizon (where cosine and polynomial_decay end) is given at construction;
  under --stop-time-hours `decay_horizon` shortens it to what the time allows;
- with `--ema-decay`, an exponential moving average of the weights follows every update
  (nmt.training.ema) and `eval_model` (validation, checkpoints) is that average.

All state lives in `state_dict()`, so resume is exact.
"""

from __future__ import annotations

import contextlib
import math
from typing import Callable, Optional, Protocol

import torch
from torch.nn.parallel import DistributedDataParallel

from nmt.config import TrainConfig
from nmt.errors import UserError
from nmt.training import dist
from nmt.training.ema import ema_weight, make_average, update_average
from nmt.training.optim import build_optimizer, decay_horizon, lr_at, set_lr

MIN_LOSS_SCALE = 1e-4  # fp16: below this the loss keeps overflowing; stop instead of looping
STAT_KEYS = ("loss", "nll_loss", "ntokens", "nsentences")
AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}  # --amp -> autocast dtype


class Loss(Protocol):
    """A task's criterion (nmt.tasks): (loss_sum, stats) of one batch already on the device.

    `net` is the module to run forward (the model, or its DDP / torch.compile wrapper), `model`
    the bare model (e.g. for its output weight), `autocast` a zero-argument callable returning
    the Trainer's autocast context, under which the forward pass runs. stats: summed tensors
    loss, nll_loss, ntokens, nsentences.
    """

    def __call__(
        self,
        net: torch.nn.Module,
        model: torch.nn.Module,
        batch,
        autocast: Callable[[], contextlib.AbstractContextManager],
    ) -> tuple[torch.Tensor, dict]: ...


class Trainer:
    """Owns the model (and its DDP wrapper), optimizer, scaler and update counter."""

    def __init__(
        self,
        cfg: TrainConfig,
        model: torch.nn.Module,
        device: torch.device,
        info: dist.DistInfo,
        d_model: int,
        *,
        loss_fn: Loss,
        horizon: int = 0,
    ):
        """d_model: the model dim (noam's scale); loss_fn: the task's criterion; horizon: the update
        where the decaying lr schedules end (0: none; see nmt.training.optim)."""
        self.cfg = cfg
        self.device = device
        self.info = info
        self.d_model = d_model
        self.loss_fn = loss_fn
        self.horizon = horizon
        self.model = model.to(device)
        self.net: torch.nn.Module = self.model
        if info.enabled:
            ids = [device.index] if device.type == "cuda" else None
            self.net = DistributedDataParallel(self.model, device_ids=ids)
        if cfg.compile:
            self.net = torch.compile(self.net)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = build_optimizer(self.params, cfg.optim)
        self.amp_dtype = AMP_DTYPES[cfg.amp]
        self.scaler = torch.amp.GradScaler(device.type, enabled=cfg.amp == "fp16")
        self.num_updates = 0
        self.lr_scale = 1.0  # shrunk by reduce_lr_on_plateau
        self.skipped_updates = 0  # fp16 overflows
        self.stop_reason: Optional[str] = None  # why the last train_step returned None
        self.seconds = 0.0  # training time before the current update, the ranks' mean (for decay_horizon)
        # The weight average (--ema-decay) that validation and checkpoints use; None = the model itself.
        self.ema_model: Optional[torch.nn.Module] = make_average(self.model) if cfg.ema_decay > 0 else None

    @property
    def eval_model(self) -> torch.nn.Module:
        """The weights to validate, save and translate with: the EMA when there is one."""
        return self.ema_model if self.ema_model is not None else self.model

    # ------------------------------------------------------------------ helpers
    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def loss(self, net: torch.nn.Module, model: torch.nn.Module, batch) -> tuple[torch.Tensor, dict]:
        """(loss_sum, stats) of one batch through `net`, the wrapper (DDP, compile) of `model` or
        `model` itself."""
        return self.loss_fn(net, model, batch, self.autocast)

    def lr(self) -> float:
        """The lr of the next update."""
        horizon = decay_horizon(self.horizon, self.num_updates, self.seconds, self.cfg.stop_time_hours * 3600)
        return lr_at(self.num_updates + 1, self.cfg.optim, self.d_model, self.lr_scale, horizon)

    # ------------------------------------------------------------------ one update
    def train_step(
        self, batches: list, stop_requested: bool = False, time_up: bool = False, seconds: float = 0.0
    ) -> Optional[dict]:
        """One update over `batches` (update_freq of them on every rank); `seconds`: training time so far.

        Returns summed stats tensors {loss, nll_loss, ntokens, nsentences, gnorm}; None when
        some rank asked to stop (a signal) or ran out of time, and then nothing was computed on
        any rank. `stop_reason` says which ("signal" wins); ranks agree because they vote in
        the same all-reduce as the token count, which also averages their clocks so that a
        time-based lr horizon is the same on every rank.
        """
        votes = [float(sum(b.ntokens for b in batches)), float(stop_requested), float(time_up), float(seconds)]
        local = torch.tensor(votes, dtype=torch.float64)
        if self.info.enabled:
            local = local.to(self.device)
            dist.all_reduce_sum(local, self.info)
        total_tokens, stops, time_ups, seconds_sum = local.tolist()
        self.seconds = seconds_sum / self.info.world_size
        if stops > 0 or time_ups > 0:
            self.stop_reason = "signal" if stops > 0 else "time"
            return None
        # DDP averages gradients over ranks; multiplying by world size turns that into a sum,
        # so every gradient ends up divided by the update's total target tokens.
        loss_scale = self.info.world_size / max(total_tokens, 1.0)
        self.net.train()
        sums = {k: torch.zeros((), device=self.device) for k in STAT_KEYS}
        for i, batch in enumerate(batches):
            batch = batch.to(self.device, non_blocking=True)
            last = i == len(batches) - 1
            sync = contextlib.nullcontext() if (last or not self.info.enabled) else self.net.no_sync()
            with sync:
                loss, stats = self.loss(self.net, self.model, batch)
                self.scaler.scale(loss * loss_scale).backward()
            for k in STAT_KEYS:
                sums[k] += stats[k].float()
        return self._step(sums)

    def _step(self, sums: dict) -> dict:
        self.scaler.unscale_(self.optimizer)
        clip = self.cfg.optim.clip_norm if self.cfg.optim.clip_norm > 0 else math.inf
        gnorm = torch.nn.utils.clip_grad_norm_(self.params, clip)
        update = self.num_updates + 1
        if self.scaler.is_enabled():
            scale_before = self.scaler.get_scale()
            set_lr(self.optimizer, self.lr())
            self.scaler.step(self.optimizer)  # skips the step itself when gradients overflowed
            self.scaler.update()
            if self.scaler.get_scale() < scale_before:
                self.skipped_updates += 1
                if self.scaler.get_scale() < MIN_LOSS_SCALE:
                    raise UserError(
                        f"fp16 loss scale fell below {MIN_LOSS_SCALE} at update {update}: the loss keeps "
                        "overflowing; try --amp bf16, a lower --lr or --clip-norm"
                    )
                self.optimizer.zero_grad(set_to_none=True)
                sums["gnorm"] = gnorm.detach().float()
                sums["overflow"] = torch.ones(())
                return sums
        else:
            # The one host sync of an update: never let a NaN/inf reach the weights.
            if not math.isfinite(gnorm.item()):
                raise UserError(
                    f"non-finite loss or gradient at update {update} (lr {self.lr():.3g}); training stopped, "
                    "the last checkpoint is intact; try a lower --lr, --clip-norm or --amp bf16 instead of fp16"
                )
            set_lr(self.optimizer, self.lr())
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.num_updates = update
        if self.ema_model is not None:
            update_average(
                self.ema_model, self.model, ema_weight(update, self.cfg.ema_decay, self.cfg.ema_start_update)
            )
        sums["gnorm"] = gnorm.detach().float()
        return sums

    # ------------------------------------------------------------------ validation
    @torch.inference_mode()
    def valid_step(self, batch) -> dict:
        """Summed stats of one validation batch (no gradients, no dropout), by `eval_model`."""
        model = self.eval_model
        model.eval()
        batch = batch.to(self.device, non_blocking=True)
        _, stats = self.loss(model, model, batch)
        return {k: stats[k].float() for k in STAT_KEYS}

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        return {
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "num_updates": self.num_updates,
            "lr_scale": self.lr_scale,
            "skipped_updates": self.skipped_updates,
        }

    def load_state_dict(self, state: dict, reset_optimizer: bool = False) -> None:
        self.num_updates = state["num_updates"]
        self.skipped_updates = state.get("skipped_updates", 0)
        if reset_optimizer:
            return
        self.lr_scale = state["lr_scale"]
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
