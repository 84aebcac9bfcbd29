"""Self-contained checkpoints: atomic writes, safe loading, averaging.

A checkpoint is one `torch.save`d dict of plain values and tensors, so it loads with
`torch.load(weights_only=True)` (no code runs on load, whatever the file holds):

    kind            "nmt-checkpoint"           (anything else is a foreign file)
    format_version  int                        (newer than FORMAT_VERSION is refused)
    arch, family    str                        (named architecture, model family)
    model_config    dict                       (the family's config fields)
    data_meta       dict                       (the data dir's meta.json)
    tokenizer_blobs dict[str, bytes]           (SentencePiece models / vocabularies)
    model           state_dict
    train_state     dict, optional             (optimizer, scaler, counters, RNG, data position)

Writes go to a temporary file in the same directory, are fsynced, then renamed over the
target, so a crash at any moment leaves either the old file or the new one, never a torn one.
"""

from __future__ import annotations

import glob
import os
import pickle
import re
import warnings
from dataclasses import dataclass
from typing import Any

import torch

from nmt import config as C
from nmt.data.tokenizer import load_tokenizers
from nmt.errors import UserError
from nmt.fileio import TMP_PREFIX, atomic_write
from nmt.models import build_for_data, config_from_dict, load_weights

KIND = "nmt-checkpoint"
FORMAT_VERSION = 1


@dataclass
class Loaded:
    """A model ready for inference, with what is needed to read and write its text."""

    model: torch.nn.Module
    model_cfg: Any
    arch: str
    meta: dict
    src_tok: Any
    tgt_tok: Any
    payload: dict


# ----------------------------------------------------------------------------- files
def save(path: str, payload: dict) -> None:
    """Atomically write `payload` to `path` (temp file + fsync + rename + directory fsync)."""
    with atomic_write(path, suffix=".pt") as f:
        torch.save(payload, f)


def copy(src: str, dst: str) -> None:
    """Atomic copy of a checkpoint file (e.g. checkpoint_last.pt -> checkpoint_best.pt)."""
    with atomic_write(dst, suffix=".pt") as out, open(src, "rb") as inp:
        while chunk := inp.read(1 << 24):
            out.write(chunk)


def clean_stale_temps(directory: str) -> list[str]:
    """Remove checkpoint temp files left by a write that was killed; returns what was removed.

    Only `.tmp-*.pt` files: other tools' temp files (e.g. `nmt generate --output`) are not ours.
    The caller must be the only writer of checkpoints in `directory` (the save dir lock).
    """
    removed = []
    for path in glob.glob(os.path.join(directory, TMP_PREFIX + "*.pt")):
        try:
            os.unlink(path)
        except FileNotFoundError:
            continue
        removed.append(path)
    return removed


def unreadable_reason(path: str, error: Exception) -> str:
    """Why torch.load(weights_only=True) failed on `path`, in plain words."""
    if os.path.getsize(path) == 0:
        return "the file is empty"
    if isinstance(error, pickle.UnpicklingError) and "weights only" in str(error).lower():
        return "it holds objects other than plain values and tensors, and loading them could run code (refused)"
    with open(path, "rb") as f:
        is_zip = f.read(4) == b"PK\x03\x04"  # torch.save writes a zip archive
    if is_zip:
        return "the archive is truncated or corrupt"
    return "it is not a file written by torch.save"


def load(path: str) -> dict:
    """Read and validate a checkpoint; any problem is a UserError naming the file."""
    if not os.path.isfile(path):
        raise UserError(f"checkpoint not found: {path}")
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickles before failing on them
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, random bytes, pickles that want to run code, ...
        raise UserError(f"{path} is not a readable nmt checkpoint: {unreadable_reason(path, e)}") from None
    if not isinstance(payload, dict) or payload.get("kind") != KIND:
        raise UserError(f"{path} is not an nmt checkpoint")
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise UserError(
            f"{path} has checkpoint format {version}, newer than this nmt supports ({FORMAT_VERSION}); upgrade nmt"
        )
    for key in ("arch", "family", "model_config", "data_meta", "tokenizer_blobs", "model"):
        if key not in payload:
            raise UserError(f"{path} is an incomplete nmt checkpoint (no {key!r})")
    return payload


# ----------------------------------------------------------------------------- model checkpoints
def model_payload(model: torch.nn.Module, model_cfg: Any, arch: str, meta: dict, blobs: dict[str, bytes]) -> dict:
    """The inference part of a checkpoint (the Trainer adds `train_state`)."""
    return {
        "kind": KIND,
        "format_version": FORMAT_VERSION,
        "arch": arch,
        "family": model_cfg.family,
        "model_config": C.asdict(model_cfg),
        "data_meta": meta,
        "tokenizer_blobs": blobs,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }


def save_model(
    path: str, model: torch.nn.Module, model_cfg: Any, arch: str, meta: dict, blobs: dict[str, bytes]
) -> None:
    save(path, model_payload(model, model_cfg, arch, meta, blobs))


def model_from_payload(payload: dict, path: str = "checkpoint") -> tuple[torch.nn.Module, Any]:
    """Build the model a checkpoint describes and load its weights (strictly)."""
    cfg = config_from_dict(payload["family"], payload["model_config"])
    model = build_for_data(cfg, payload["data_meta"])
    load_weights(model, payload["model"], f"{path}: weights do not fit architecture {payload['arch']!r}")
    return model, cfg


def load_model(path: str, device: str | torch.device = "cpu") -> Loaded:
    """Checkpoint -> Loaded(model in eval mode on `device`, config, tokenizers, meta)."""
    payload = load(path)
    model, cfg = model_from_payload(payload, path)
    src_tok, tgt_tok = load_tokenizers(payload["data_meta"], payload["tokenizer_blobs"])
    model.to(device).eval()
    return Loaded(model, cfg, payload["arch"], payload["data_meta"], src_tok, tgt_tok, payload)


def load_models(paths: str, device: str | torch.device = "cpu") -> list[Loaded]:
    """`a.pt:b.pt` -> one Loaded per file (an ensemble); all must share the target vocabulary."""
    loaded = [load_model(p, device) for p in paths.split(":") if p]
    if not loaded:
        raise UserError("--path names no checkpoint")
    first = loaded[0].meta
    for p, other in zip(paths.split(":")[1:], loaded[1:]):
        same = other.meta["target_lang"] == first["target_lang"] and other.meta["vocab_size"] == first["vocab_size"]
        if not same or other.payload["tokenizer_blobs"] != loaded[0].payload["tokenizer_blobs"]:
            raise UserError(
                f"{p} has a different vocabulary than {paths.split(':')[0]}; an ensemble needs one vocabulary"
            )
    return loaded


# ----------------------------------------------------------------------------- averaging
def average(paths: list[str], trained: bool = False) -> dict:
    """Mean of the weights of several checkpoints of one architecture (float sums in float64).

    A checkpoint saved with --ema-decay holds the moving average as its model and the weights
    training reached beside it; `trained` averages those instead.
    """
    if not paths:
        raise UserError("no checkpoints to average")

    def weights(path: str, payload: dict) -> dict:
        if not trained:
            return payload["model"]
        state = payload.get("train_state")
        if not isinstance(state, dict) or "trained_model" not in state:
            raise UserError(
                f"{path} holds no trained weights apart from its model (it was not saved by training with --ema-decay)"
            )
        return state["trained_model"]

    first = load(paths[0])
    first_weights = weights(paths[0], first)
    sums = {k: v.double() if v.is_floating_point() else v.clone() for k, v in first_weights.items()}
    for p in paths[1:]:
        payload = load(p)
        model = weights(p, payload)
        if payload["arch"] != first["arch"] or model.keys() != sums.keys():
            raise UserError(f"{p} is a different architecture than {paths[0]}; cannot average them")
        for k, v in model.items():
            if v.is_floating_point():
                sums[k] += v.double()
    out = {k: v for k, v in first.items() if k != "train_state"}
    out["model"] = {
        k: (v / len(paths)).to(first_weights[k].dtype) if v.is_floating_point() else v for k, v in sums.items()
    }
    out["averaged_from"] = [os.path.basename(p) for p in paths]
    return out


def _numbered(save_dir: str, pattern: str) -> list[str]:
    found = []
    for name in os.listdir(save_dir) if os.path.isdir(save_dir) else []:
        m = re.fullmatch(pattern, name)
        if m:
            found.append((int(m.group(1)), os.path.join(save_dir, name)))
    return [p for _, p in sorted(found)]


def epoch_checkpoints(save_dir: str) -> list[str]:
    """checkpointN.pt files sorted by epoch N."""
    return _numbered(save_dir, r"checkpoint(\d+)\.pt")


def update_checkpoints(save_dir: str) -> list[str]:
    """checkpoint_E_U.pt files (saved every --save-interval-updates) sorted by update U."""
    return _numbered(save_dir, r"checkpoint_\d+_(\d+)\.pt")


def checkpoints_to_average(cfg: C.AverageConfig) -> list[str]:
    """The files `nmt average-checkpoints` averages: the given files, or the last N of a directory."""
    by_epoch = cfg.num_epoch_checkpoints is not None
    count = cfg.num_epoch_checkpoints if by_epoch else cfg.num_update_checkpoints
    if count is None:
        missing = [p for p in cfg.inputs if not os.path.isfile(p)]
        if missing:
            raise UserError(f"--inputs {missing[0]} is not a file (a directory needs --num-epoch-checkpoints N)")
        return list(cfg.inputs)
    flag = "--num-epoch-checkpoints" if by_epoch else "--num-update-checkpoints"
    if len(cfg.inputs) != 1 or not os.path.isdir(cfg.inputs[0]):
        raise UserError(f"{flag} needs exactly one directory in --inputs")
    found = (epoch_checkpoints if by_epoch else update_checkpoints)(cfg.inputs[0])
    if len(found) < count:
        raise UserError(f"{flag} {count}: {cfg.inputs[0]} has only {len(found)} such checkpoint(s)")
    return found[-count:]


def average_checkpoints(cfg: C.AverageConfig) -> list[str]:
    """Check the flags, average the chosen checkpoints into cfg.output; the files averaged."""
    C.check_average(cfg)
    paths = checkpoints_to_average(cfg)
    save(cfg.output, average(paths, trained=cfg.trained_weights))
    return paths
