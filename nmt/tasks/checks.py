"""Checks every task makes before it reads data: the data directory is for it, the flags fit it.

They run when a task is constructed, so a wrong pairing is one UserError line before training
starts; `check_task_data` makes the data-directory check alone, for a caller that wants it before
it writes anything (it reads only meta.json).
"""

from __future__ import annotations

from nmt.config import TrainConfig
from nmt.data.dataset import read_meta
from nmt.errors import UserError
from nmt.registry import ARCHS

# How to write a data directory for each task (the hint of the refusal).
HOW_TO_PREPROCESS = {
    "translation": "preprocess parallel text with -s SRC -t TGT",
    "language_modeling": "preprocess one language with --only-source -s LANG",
    "masked_lm": "preprocess one language with --only-source -s LANG",
}


def data_tasks(meta: dict) -> list[str]:
    """The tasks a data directory's meta.json serves (a meta without "tasks" is a translation one)."""
    return list(meta.get("tasks", ["translation"]))


def require_task_data(meta: dict, task: str, data_dir: str) -> None:
    """UserError unless the data directory's meta lists `task`."""
    tasks = data_tasks(meta)
    if task not in tasks:
        kind = "monolingual" if meta.get("monolingual") else "parallel"
        hint = HOW_TO_PREPROCESS.get(task, "preprocess data for it")
        raise UserError(
            f"--task {task} cannot train on {data_dir}: it holds {kind} data for {', '.join(tasks)}; {hint}"
        )


def check_task_data(cfg: TrainConfig) -> None:
    """UserError unless cfg.data is a data directory (meta.json) that serves --task cfg.task."""
    require_task_data(read_meta(cfg.data), cfg.task, cfg.data)


def require_no_translation_flags(cfg: TrainConfig, task: str) -> None:
    """The flags that translate during validation make no sense for a task that does not translate."""
    if cfg.eval_bleu:
        raise UserError(f"--eval-bleu: task {task!r} does not translate; it reports loss, nll_loss and ppl")
    if cfg.attn_sample is not None:
        raise UserError(f"--attn-sample draws cross-attention, which task {task!r} has not")


def require_arch_for_task(model_cfg, task: str, arch: str) -> None:
    """UserError unless --arch `arch` (its config `model_cfg`) is made for --task `task`; lists the archs that are."""
    if task not in getattr(model_cfg, "tasks", ("translation",)):
        fits = sorted(name for name, make in ARCHS.items() if task in make().tasks)
        raise UserError(f"--arch {arch} is not a model for --task {task}; choose one of: {', '.join(fits)}")
