"""`nmt preprocess`: raw parallel text -> tokenizer + binarized splits + meta.json.

With --only-source the text of one language becomes a monolingual data directory instead
(nmt.data.preprocess_mono: a SentencePiece model with a <mask> piece, for the language-model tasks).

Steps: check every input file (exists, valid UTF-8, same line count on both sides), train the
tokenizer on the training split only (SentencePiece, joint or per language; or a word vocabulary
for pre-tokenized text), encode every split into `.bin`/`.idx` (cleaning the training split),
write meta.json, and report a table on stderr. Everything is written to a temporary directory
next to `destdir` and renamed into place at the end, so a failure leaves `destdir` untouched.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from typing import Optional

from rich.console import Console
from rich.table import Table
from sentencepiece import sentencepiece_model_pb2

from nmt.config import PreprocessConfig, check_preprocess
from nmt.data import target_vocab
from nmt.data.binarize import FORMAT_VERSION, SplitStats, binarize_split, read_pairs, sample_split
from nmt.data.preprocess_mono import MASK_PIECE, build_monolingual
from nmt.data.tokenizer import (
    BOS,
    EOS,
    PAD,
    UNK,
    SentencePieceTokenizer,
    WordTokenizer,
    build_word_vocab,
    train_sentencepiece,
)
from nmt.errors import UserError
from nmt.fileio import publish_dir

SCAN_BLOCK = 1 << 20


def scan_text(path: str) -> tuple[int, bool]:
    """(number of lines, whether any line has non-blank text) of a UTF-8 file.

    Streams the file in blocks; invalid UTF-8 raises UserError naming the file and line.
    A last line without a final newline counts as a line.
    """
    lines, has_text, tail = 0, False, b""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise UserError(f"input file {path} does not exist") from None
    except OSError as e:
        raise UserError(f"cannot read input file {path}: {e.strerror}") from None
    with f:
        while True:
            block = f.read(SCAN_BLOCK)
            data = tail + block
            cut = len(data) if not block else data.rfind(b"\n") + 1  # whole lines only, but all at EOF
            whole, tail = data[:cut], data[cut:]
            try:
                whole.decode("utf-8")
            except UnicodeDecodeError as e:
                line = lines + whole.count(b"\n", 0, e.start) + 1
                raise UserError(f"{path}: line {line} is not valid UTF-8") from None
            lines += whole.count(b"\n") + (1 if not block and whole and not whole.endswith(b"\n") else 0)
            has_text = has_text or bool(whole.strip())
            if not block:
                return lines, has_text


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


def _langs(cfg: PreprocessConfig) -> tuple[str, ...]:
    """The languages whose files are read: the source only with --only-source, else source and target."""
    return (cfg.source_lang,) if cfg.only_source else (cfg.source_lang, cfg.target_lang)


def _check_inputs(cfg: PreprocessConfig, splits: list[tuple[str, str]]) -> None:
    """Every file exists and is UTF-8, both sides agree on the line count, training has text."""
    if cfg.only_source:
        for split, prefix in splits:
            path = f"{prefix}.{cfg.source_lang}"
            lines, has_text = scan_text(path)
            if split == "train" and not lines:
                raise UserError(f"the training set is empty: {path} has no lines")
            if split == "train" and not has_text:
                raise UserError(f"the training set is empty: every line of {path} is blank")
        return
    for split, prefix in splits:
        src, tgt = f"{prefix}.{cfg.source_lang}", f"{prefix}.{cfg.target_lang}"
        (n_src, text_src), (n_tgt, text_tgt) = scan_text(src), scan_text(tgt)
        if n_src != n_tgt:
            raise UserError(f"{src} has {n_src} lines but {tgt} has {n_tgt}; the two sides must be line-aligned")
        if split == "train":
            if n_src == 0:
                raise UserError(f"the training set is empty: {src} and {tgt} have no lines")
            for path, has_text in ((src, text_src), (tgt, text_tgt)):
                if not has_text:
                    raise UserError(f"the training set is empty: every line of {path} is blank")


def _train_tokenizers(cfg: PreprocessConfig, work: str) -> dict:
    """Train the tokenizer(s) into `work`; returns meta's "tokenizer" entry plus 'objects' {lang: tokenizer}."""
    langs = _langs(cfg)
    train = {lang: f"{cfg.trainpref}.{lang}" for lang in langs}
    groups = {"": langs} if cfg.joined_dictionary or cfg.only_source else {f".{lang}": (lang,) for lang in langs}
    files, vocab_files, objects = {}, {}, {}
    if cfg.tokenizer == "sentencepiece":
        for suffix, group in groups.items():
            prefix = os.path.join(work, f"spm{suffix}")
            train_sentencepiece(
                [train[lang] for lang in group],
                prefix,
                cfg.vocab_size,
                cfg.spm_model_type,
                cfg.character_coverage,
                cfg.input_sentence_size,
                cfg.seed,
                user_defined_symbols=(MASK_PIECE,) if cfg.only_source else (),
            )
            tok = SentencePieceTokenizer(_without_work_dir(prefix + ".model"))
            for lang in group:
                files[lang], vocab_files[lang], objects[lang] = f"spm{suffix}.model", f"spm{suffix}.vocab", tok
        entry = {
            "type": "sentencepiece",
            "model_type": cfg.spm_model_type,
            "character_coverage": cfg.character_coverage,
            "input_sentence_size": cfg.input_sentence_size,
            "seed": cfg.seed,
            "files": files,
            "vocab_files": vocab_files,
        }
    else:
        counts = {lang: Counter() for lang in langs}
        for src, tgt in read_pairs(train[langs[0]], train[langs[1]]):
            for lang, lines in zip(langs, (src, tgt)):
                for line in lines:
                    counts[lang].update(line.split())
        for suffix, group in groups.items():
            words, kept_counts = build_word_vocab(sum((counts[lang] for lang in group), Counter()), cfg.vocab_size)
            tok = WordTokenizer(words)
            name = f"dict{suffix}.txt"
            with open(os.path.join(work, name), "wb") as f:
                f.write(tok.to_bytes(kept_counts))
            for lang in group:
                files[lang], objects[lang] = name, tok
        entry = {"type": "word", "files": files}
    return {**entry, "objects": objects}


def _without_work_dir(path: str) -> bytes:
    """Rewrite the SentencePiece model at `path` so that the training spec it records names the model
    file alone, not the temporary work dir (a random name), and return its bytes: the same input
    then gives the same file."""
    proto = sentencepiece_model_pb2.ModelProto()
    with open(path, "rb") as f:
        proto.ParseFromString(f.read())
    proto.trainer_spec.model_prefix = os.path.basename(proto.trainer_spec.model_prefix)
    data = proto.SerializeToString()
    with open(path, "wb") as f:
        f.write(data)
    return data


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
    _check_inputs(cfg, splits)

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
        meta = _build(cfg, splits, work)
        publish_dir(work, os.path.abspath(cfg.destdir))
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        if created:
            shutil.rmtree(created, ignore_errors=True)
        raise
    _report(meta, console, time.perf_counter() - start)
    return meta


def _build(cfg: PreprocessConfig, splits: list[tuple[str, str]], work: str) -> dict:
    """Write tokenizer files, binarized splits and meta.json into `work`."""
    if cfg.only_source:
        return build_monolingual(cfg, splits, work, _train_tokenizers(cfg, work))
    langs = (cfg.source_lang, cfg.target_lang)
    tok = _train_tokenizers(cfg, work)
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


def _report(meta: dict, console: Console, seconds: float) -> None:
    """Per-split table (lines, kept, dropped and why, tokens, unknowns) and evaluation warnings."""
    mono = meta.get("monolingual", False)
    langs = (meta["source_lang"],) if mono else (meta["source_lang"], meta["target_lang"])
    reasons = ("empty", "too_long") if mono else ("empty", "too_long", "ratio")
    table = Table(title=f"nmt preprocess {'-'.join(langs)} ({seconds:.1f} s)")
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
