"""`nmt preprocess`: raw parallel text -> tokenizer + binarized splits + meta.json.

With --only-source the text of one language becomes a monolingual data directory instead
(nmt.data.preprocess_mono: a SentencePiece model with a <mask> piece, for the language-model tasks).

Steps: check every input file (exists, valid UTF-8, same line count on both sides; a streaming
scan), train the tokenizer on the training split only (nmt.data.train_tokenizer: SentencePiece on
at most --spm-train-sentences lines, joint or per language; or a word vocabulary for pre-tokenized
text), encode every split into `.bin`/`.idx` chunk by chunk in --workers processes (cleaning the
training split; nmt.data.binarize), write meta.json, and report a table on stderr. Every step
streams, so memory does not grow with the corpus. Everything is written to a temporary directory
next to `destdir` and renamed into place at the end, so a failure leaves `destdir` untouched.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from typing import Optional

from rich.console import Console
from rich.table import Table

from nmt.config import PreprocessConfig, check_preprocess
from nmt.data import target_vocab
from nmt.data.binarize import FORMAT_VERSION, SplitStats, binarize_split
from nmt.data.preprocess_mono import build_monolingual
from nmt.data.rawtext import scan_text
from nmt.data.subword_samples import sample_split
from nmt.data.tokenizer import BOS, EOS, PAD, UNK
from nmt.data.train_tokenizer import train_tokenizers
from nmt.errors import UserError
from nmt.fileio import publish_dir

__all__ = ["preprocess", "scan_text"]


def _check_destdir(destdir: str, force: bool) -> None:
    if os.path.exists(destdir) and not os.path.isdir(destdir):
        raise UserError(f"--destdir {destdir} exists and is not a directory")
    if os.path.isdir(destdir) and os.listdir(destdir) and not force:
        raise UserError(f"--destdir {destdir} exists and is not empty; use --force to replace it")


def _splits(cfg: PreprocessConfig) -> list[tuple[str, str]]:
    """(split name, file prefix): train, valid, then test, test1, test2, ..."""
    out = [("train", cfg.trainpref)]
    if cfg.validpref:
        out.append(("valid", cfg.validpref))
    out += [("test" if i == 0 else f"test{i}", p) for i, p in enumerate(cfg.testpref)]
    return out


def _check_inputs(cfg: PreprocessConfig, splits: list[tuple[str, str]]) -> int:
    """Every file exists and is UTF-8, both sides agree on the line count, training has text.
    Returns the number of training lines."""
    train_lines = 0
    if cfg.only_source:
        for split, prefix in splits:
            path = f"{prefix}.{cfg.source_lang}"
            lines, has_text = scan_text(path)
            if split == "train" and not lines:
                raise UserError(f"the training set is empty: {path} has no lines")
            if split == "train" and not has_text:
                raise UserError(f"the training set is empty: every line of {path} is blank")
            if split == "train":
                train_lines = lines
        return train_lines
    for split, prefix in splits:
        src, tgt = f"{prefix}.{cfg.source_lang}", f"{prefix}.{cfg.target_lang}"
        (n_src, text_src), (n_tgt, text_tgt) = scan_text(src), scan_text(tgt)
        if n_src != n_tgt:
            longer = src if n_src > n_tgt else tgt
            raise UserError(
                f"{src} has {n_src} lines but {tgt} has {n_tgt}: line {min(n_src, n_tgt) + 1} of {longer} has no "
                "counterpart; the two sides must be line-aligned"
            )
        if split == "train":
            if n_src == 0:
                raise UserError(f"the training set is empty: {src} and {tgt} have no lines")
            for path, has_text in ((src, text_src), (tgt, text_tgt)):
                if not has_text:
                    raise UserError(f"the training set is empty: every line of {path} is blank")
            train_lines = n_src
    return train_lines


def _make_parents(path: str) -> Optional[str]:
    """Create the missing parent directories of `path`; return the topmost one created, if any."""
    top, parent = None, os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        top, parent = parent, os.path.dirname(parent)
    if top:
        os.makedirs(os.path.dirname(os.path.abspath(path)))
    return top


def preprocess(cfg: PreprocessConfig, console: Optional[Console] = None) -> dict:
    """Run the whole preprocessing; returns the meta.json dict written to `cfg.destdir`."""
    # A table needs ~90 columns; rich assumes 80 when stderr is a pipe or a file.
    console = console or Console(stderr=True, width=None if sys.stderr.isatty() else 100)
    start = time.perf_counter()
    check_preprocess(cfg)
    _check_destdir(cfg.destdir, cfg.force)
    splits = _splits(cfg)
    train_lines = _check_inputs(cfg, splits)
    clock = {"checks": time.perf_counter() - start}

    created = None
    try:
        created = _make_parents(cfg.destdir)
        parent = os.path.dirname(os.path.abspath(cfg.destdir))
        work = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(cfg.destdir))}.tmp-", dir=parent)
    except OSError as e:
        if created:
            shutil.rmtree(created, ignore_errors=True)
        raise UserError(f"cannot create --destdir {cfg.destdir}: {e.strerror}") from None
    umask = os.umask(0o022)
    os.umask(umask)
    os.chmod(work, 0o777 & ~umask)  # mkdtemp makes it private; the result is an ordinary directory
    try:
        meta = _build(cfg, splits, work, train_lines, clock)
        publish_dir(work, os.path.abspath(cfg.destdir))
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        if created:
            shutil.rmtree(created, ignore_errors=True)
        raise
    total = time.perf_counter() - start
    clock["encoding"] = total - clock["checks"] - clock["tokenizer"]
    _report(meta, console, total, clock)
    return meta


def _build(cfg: PreprocessConfig, splits: list[tuple[str, str]], work: str, train_lines: int, clock: dict) -> dict:
    """Write tokenizer files, binarized splits and meta.json into `work` (the training split has
    `train_lines` lines); records the seconds the tokenizer took in clock["tokenizer"]."""
    start = time.perf_counter()
    tok = train_tokenizers(cfg, work, train_lines)
    clock["tokenizer"] = time.perf_counter() - start
    if cfg.only_source:
        return build_monolingual(cfg, splits, work, tok)
    langs = (cfg.source_lang, cfg.target_lang)
    objects = tok.pop("objects")
    vocab_size = {lang: objects[lang].vocab_size for lang in langs}
    dtype = "uint16" if max(vocab_size.values()) <= 1 << 16 else "int32"
    split_meta = {}
    for split, prefix in splits:
        stats: SplitStats = binarize_split(
            f"{prefix}.{langs[0]}",
            f"{prefix}.{langs[1]}",
            lambda lang, split=split: os.path.join(work, f"{split}.{lang}"),
            langs,
            (objects[langs[0]], objects[langs[1]]),
            dtype,
            clean=split == "train",
            max_len=cfg.max_len,
            max_len_ratio=cfg.max_len_ratio,
            workers=cfg.workers,
            chunk_lines=cfg.chunk_lines,
        )
        if split == "train" and stats.kept == 0:
            why = ", ".join(f"{k}: {v}" for k, v in stats.dropped.items())
            raise UserError(
                f"the training set is empty after cleaning: all {stats.lines} pairs were dropped ({why}); "
                "check the input or raise --max-len / --max-len-ratio"
            )
        split_meta[split] = {
            "lines": stats.lines,
            "kept": stats.kept,
            "dropped": stats.dropped,
            "tokens": stats.tokens,
            "unknown": stats.unknown,
            "files": {lang: os.path.abspath(f"{prefix}.{lang}") for lang in langs},
        }
        if split != "train":
            split_meta[split]["flagged"] = stats.flagged
    for k in range(1, cfg.subword_samples + 1):  # subword regularization: training cycles through these
        name = f"train.sample{k}"
        stats = sample_split(
            lambda lang: os.path.join(work, f"train.{lang}"),
            lambda lang, name=name: os.path.join(work, f"{name}.{lang}"),
            langs,
            (objects[langs[0]], objects[langs[1]]),
            dtype,
            cfg.subword_alpha,
            cfg.seed + k,
            cfg.max_len,
            cfg.workers,
        )
        split_meta[name] = {
            **split_meta["train"],
            "lines": stats.lines,
            "kept": stats.kept,
            "dropped": dict.fromkeys(stats.dropped, 0),
            "tokens": stats.tokens,
            "unknown": stats.unknown,
        }
    if cfg.trim_target_vocab:
        vocab_size[langs[1]] = _trim_target_vocab(work, tok, split_meta, langs, dtype, vocab_size[langs[0]])
    if cfg.subword_samples:
        split_meta["train"]["sampled_copies"] = {"count": cfg.subword_samples, "alpha": cfg.subword_alpha}
    meta = {
        "format_version": FORMAT_VERSION,
        "source_lang": cfg.source_lang,
        "target_lang": cfg.target_lang,
        "joined_dictionary": cfg.joined_dictionary,
        "vocab_size": vocab_size,
        "special_ids": {"pad": PAD, "unk": UNK, "bos": BOS, "eos": EOS},
        "tokenizer": tok,
        "dtype": dtype,
        "cleaning": {"max_len": cfg.max_len, "max_len_ratio": cfg.max_len_ratio},
        "splits": split_meta,
        "tasks": ["translation"],
    }
    with open(os.path.join(work, "meta.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2, ensure_ascii=False)
        f.write("\n")
    return meta


def _trim_target_vocab(work: str, tok: dict, split_meta: dict, langs: tuple, dtype: str, vocab_size: int) -> int:
    """Renumber the joined dictionary in `work` so the target training pieces come first (see
    nmt.data.target_vocab); updates the unknown counts in `split_meta`; returns their number K."""
    src, tgt = (os.path.join(work, f"{{}}.{lang}.bin") for lang in langs)  # formats of a split's .bin paths
    train = [s for s in split_meta if s == "train" or s.startswith("train.sample")]
    new_of_old, k = target_vocab.renumbering(target_vocab.used_ids([tgt.format(s) for s in train], dtype, vocab_size))
    for split, entry in split_meta.items():
        target_vocab.remap_file(src.format(split), dtype, new_of_old)
        entry["unknown"][langs[1]] += target_vocab.remap_file(tgt.format(split), dtype, new_of_old, limit=k)
    files = set(tok["files"].values()) | set(tok.get("vocab_files", {}).values())
    for name in files:
        path = os.path.join(work, name)
        with open(path, "rb") as f:
            data = f.read()
        if name.endswith(".model"):
            data = target_vocab.reorder_sentencepiece(data, new_of_old)
        else:
            data = target_vocab.reorder_lines(data, new_of_old)
        with open(path, "wb") as f:
            f.write(data)
    return k


def _report(meta: dict, console: Console, seconds: float, clock: dict) -> None:
    """Per-split table (lines, kept, dropped and why, tokens, unknowns), evaluation warnings, and
    where the time went (`clock`: seconds of the checks, the tokenizer, the encoding)."""
    mono = meta.get("monolingual", False)
    langs = (meta["source_lang"],) if mono else (meta["source_lang"], meta["target_lang"])
    reasons = ("empty", "too_long") if mono else ("empty", "too_long", "ratio")
    steps = ", ".join(f"{k} {v:.1f} s" for k, v in clock.items())
    table = Table(title=f"nmt preprocess {'-'.join(langs)} ({seconds:.1f} s: {steps})")
    names = "/".join(langs)
    for col in ("split", "lines", "kept", "dropped", "/".join(reasons).replace("too_", ""), f"tokens {names}"):
        table.add_column(col, justify="left" if col == "split" else "right", no_wrap=True)
    table.add_column(f"unk {names}", justify="right", no_wrap=True)
    for split, s in meta["splits"].items():
        table.add_row(
            split,
            str(s["lines"]),
            str(s["kept"]),
            str(s["lines"] - s["kept"]),
            "/".join(str(s["dropped"][r]) for r in reasons),
            "/".join(str(s["tokens"][lang]) for lang in langs),
            "/".join(str(s["unknown"][lang]) for lang in langs),
        )
    console.print(table)
    for split, s in meta["splits"].items():
        flagged = s.get("flagged", {})
        if sum(flagged.values()):
            why = ", ".join(f"{k}: {v}" for k, v in flagged.items() if v)
            what = "lines" if mono else "pairs"
            console.print(
                f"[yellow]warning[/yellow]: {split}: {sum(flagged.values())} {what} would fail cleaning "
                f"({why}); evaluation splits are kept whole"
            )
    sizes = ", ".join(f"{k} {v}" for k, v in meta["vocab_size"].items())
    trimmed = meta["joined_dictionary"] and len(set(meta["vocab_size"].values())) > 1
    note = " (joined; the target uses the first pieces only)" if trimmed else ""
    console.print(f"vocabulary: {sizes}{note}; tokens stored as {meta['dtype']}")
    lines = sum(s["lines"] for s in meta["splits"].values())
    console.print(
        f"encoding: {lines} lines in {clock['encoding']:.1f} s ({lines / max(clock['encoding'], 1e-9):.0f} lines/s)"
    )
