"""Shell recipes: syntax, argument errors, offline failures, data preparation and the flags they pass.

Nothing here trains or touches the network: a fake `nmt` (and `torchrun`) records its arguments,
download URLs point at a closed local port, and corpora are a few synthetic lines built in tmp_path.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import typer

from nmt import config as C
from nmt.cli import app
from nmt.flags import parse_train_args
from nmt.models import arch_config
from nmt.registry import ARCHS

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
ALL = ["quickstart.sh", "multi30k.sh", "language_model.sh", "iwslt14_de_en.sh", "wmt14_en_de.sh"]
DEAD = "http://127.0.0.1:9"  # nothing listens there: curl fails at once
WMT_ARCHIVES = {
    "WMT14_EUROPARL_URL": "training-parallel-europarl-v7.tgz",
    "WMT14_COMMONCRAWL_URL": "training-parallel-commoncrawl.tgz",
    "WMT14_NEWS_COMMENTARY_URL": "training-parallel-nc-v9.tgz",
    "WMT14_DEV_URL": "dev.tgz",
    "WMT14_TEST_URL": "test-full.tgz",
}
WMT_DEAD = {var: f"{DEAD}/{name}" for var, name in WMT_ARCHIVES.items()}  # same names, nothing behind them
FAKE = f"""#!{sys.executable}
import json, os, sys
with open(os.environ["FAKE_LOG"], "a") as f: f.write(json.dumps([os.path.basename(sys.argv[0])] + sys.argv[1:]) + "\\n")
if sys.argv[1:2] == ["preprocess"]:  # leave a data directory behind, as the real one does
    os.makedirs(d := sys.argv[sys.argv.index("--destdir") + 1], exist_ok=True)
    open(d + "/meta.json", "w").write("{{}}")
if sys.argv[1:2] == ["generate"] and "--output" in sys.argv:  # K hypotheses per input line, in order
    arg = lambda name, default: sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default
    lines = open(arg("--input", None)).read().splitlines()
    k = int(arg("--nbest", "1"))
    hyps = [f"then {{i}} of {{j}}\\n" for i in range(len(lines)) for j in range(k)]
    open(arg("--output", None), "w").write("".join(hyps))
"""


def run(tmp: Path, script: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    """Run a recipe in tmp with a clean environment, a fake nmt and torchrun, and `env` on top."""
    bin_dir = tmp / "bin"
    for name in ("nmt", "torchrun"):
        write_lines(bin_dir / name, [FAKE])
        (bin_dir / name).chmod(0o755)
    base = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp),
        "FAKE_LOG": str(tmp / "calls.jsonl"),
        "NMT": str(bin_dir / "nmt"),
        "TORCHRUN": str(bin_dir / "torchrun"),
        "WORK": str(tmp / "work"),
    }
    return subprocess.run(
        ["bash", str(RECIPES / script), *args],
        cwd=tmp,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def calls(tmp: Path) -> list[list[str]]:
    log = tmp / "calls.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def one_error_line(proc: subprocess.CompletedProcess, prefix: str = "error: ") -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert len(lines) == 1 and lines[0].startswith(prefix), proc.stderr
    return lines[0]


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if not p.is_dir()) if path.exists() else []


def write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def make_tgz(path: Path, members: dict[str, list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, lines in members.items():
            data = "".join(line + "\n" for line in lines).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def preprocess_argv(tmp: Path) -> list[str]:
    """The argv of the single preprocess call."""
    pre = [c for c in calls(tmp) if c[1] == "preprocess"]
    assert len(pre) == 1, calls(tmp)
    return pre[0]


def train_argv(tmp: Path) -> list[str]:
    """The argv after `train` of the single training call, whichever launcher ran it."""
    trains = [c for c in calls(tmp) if "train" in c]
    assert len(trains) == 1, calls(tmp)
    return trains[0][trains[0].index("train") + 1 :]


# ------------------------------------------------------------------ every recipe
@pytest.mark.parametrize("script", ALL)
def test_bash_syntax_strict_mode_and_header(script):
    path, text = RECIPES / script, (RECIPES / script).read_text()
    proc = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert os.access(path, os.X_OK) and text.startswith("#!/usr/bin/env bash\n#") and "\nset -euo pipefail\n" in text
    if script in ("iwslt14_de_en.sh", "wmt14_en_de.sh"):  # never run here: they must say so
        assert "NOT RUN in this project" in text and "Published reference" in text


BAD = (
    [("multi30k.sh", a, {}, "usage: ") for a in ([], ["en"], ["en", "en"], ["en", "xx"])]
    + [("iwslt14_de_en.sh", a, {}, "usage: ") for a in (["de"], ["de", "fr"], ["en", "en"], ["de", "en", "x"])]
    + [("wmt14_en_de.sh", a, {}, "usage: ") for a in (["en", "de"], ["--fast"])]
    + [
        ("iwslt14_de_en.sh", [], env, f"error: {word}")
        for env, word in [
            ({"EPOCHS": "ten"}, "EPOCHS"),
            ({"DEVICE": "tpu"}, "DEVICE"),
            ({"EPOCHS": "3", "AVG": "5"}, "AVG=5"),
        ]
    ]
    + [
        ("multi30k.sh", ["en", "de"], env, f"error: {word}")
        for env, word in [
            ({"HOURS": "0"}, "HOURS"),
            ({"HOURS": "1h"}, "HOURS"),
            ({"EPOCHS": "ten"}, "EPOCHS"),
            ({"EPOCHS": "3", "AVG": "5"}, "AVG=5"),
            ({"LENPEN": "-1"}, "LENPEN"),
            ({"AMP": "fp16"}, "AMP"),
            ({"TRIM": "yes"}, "TRIM"),
            ({"WD": "-0.1"}, "WD"),
            ({"SAMPLES": "three"}, "SAMPLES"),
        ]
    ]
    + [("language_model.sh", ["en"], {}, "usage: ")]
    + [("language_model.sh", [], {var: "0"}, f"error: {var}") for var in ("EPOCHS", "VOCAB", "THREADS")]
    + [
        ("wmt14_en_de.sh", [], env, f"error: {word}")
        for env, word in [
            ({"ARCH": "transformer_huge"}, "ARCH"),
            ({"AMP": "fp8"}, "AMP"),
            ({"GPUS": "0"}, "GPUS"),
            ({"NNODES": "2"}, "NNODES=2 needs MASTER_ADDR"),
            ({"NNODES": "2", "NODE_RANK": "2", "MASTER_ADDR": "h"}, "NODE_RANK"),
        ]
    ]
)


@pytest.mark.parametrize("script, args, env, start", BAD)
def test_wrong_arguments_or_settings_exit_2_before_doing_anything(tmp_path, script, args, env, start):
    one_error_line(run(tmp_path, script, *args, **env), prefix=start)
    assert not (tmp_path / "work").exists() and calls(tmp_path) == []


@pytest.mark.parametrize(
    "script, args, env",
    [
        ("multi30k.sh", ["en", "de"], {"MULTI30K_URL": DEAD}),
        ("language_model.sh", [], {"MULTI30K_URL": DEAD}),
        ("iwslt14_de_en.sh", [], {"IWSLT14_URL": f"{DEAD}/de-en.tgz"}),
        ("wmt14_en_de.sh", [], WMT_DEAD),
    ],
)
def test_unreachable_download_fails_with_one_line_and_leaves_no_file(tmp_path, script, args, env):
    proc = run(tmp_path, script, *args, SACREBLEU="", **env)
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and f"cannot download {DEAD}/" in errors[0], proc.stderr
    one_error_line(proc)
    assert files_under(tmp_path / "work") == [] and calls(tmp_path) == []


def test_missing_curl_is_one_error_line(tmp_path):
    no_curl = tmp_path / "no-curl"  # every program on PATH but curl
    no_curl.mkdir()
    for d in os.environ["PATH"].split(os.pathsep):
        for exe in Path(d).glob("*") if Path(d).is_dir() else []:
            if exe.name != "curl" and not (no_curl / exe.name).exists():
                (no_curl / exe.name).symlink_to(exe)
    line = one_error_line(run(tmp_path, "iwslt14_de_en.sh", PATH=str(no_curl)))
    assert line == "error: 'curl' is required but was not found on PATH" and files_under(tmp_path / "work") == []


@pytest.mark.parametrize(
    "short, missing, expect",
    [
        ("valid.de", "", r"m30k/valid\.de has 1013 lines, Multi30k valid has 1014"),
        ("", "test2016.de", r"test2016\.de is missing"),
    ],
)
def test_multi30k_local_copy_is_checked(tmp_path, short, missing, expect):
    local = tmp_path / "m30k"  # right sizes but one file short by a line, or one file missing
    for split, n in {"train": 29000, "valid": 1014, "test2016": 1000}.items():
        for name in (f"{split}.en", f"{split}.de"):
            if name != missing:
                write_lines(local / name, [f"{name} {i}" for i in range(n - (name == short))])
    line = one_error_line(run(tmp_path, "multi30k.sh", "en", "de", NMT_DATA_DIR=str(local)))
    assert re.search(expect, line), line
    assert calls(tmp_path) == []
    raw = tmp_path / "work" / "raw"  # nothing unchecked is left to be trusted by a re-run
    assert (raw / "train.de").exists() and not list(raw.glob(".*"))
    assert not (raw / (short or missing)).exists()


def m30k_copy(tmp: Path, langs: tuple[str, str]) -> Path:
    local = tmp / "m30k"
    for split, n in {"train": 29000, "valid": 1014, "test2016": 1000}.items():
        for lang in langs:
            write_lines(local / f"{split}.{lang}", [f"{split} {lang} {i}" for i in range(n)])
    return local


def epoch_checkpoints(tmp: Path, epochs: range) -> None:
    """What a training that kept these epochs leaves in the recipe's checkpoint dir (the fake nmt trains nothing)."""
    ckpt = tmp / "work" / "ckpt"
    ckpt.mkdir(parents=True, exist_ok=True)
    for name in [f"checkpoint{e}.pt" for e in epochs] + [
        "checkpoint_last.pt",
        "checkpoint_best.pt",
        "checkpoint_init.pt",
    ]:
        (ckpt / name).write_bytes(b"")


def test_multi30k_trains_on_a_time_budget_and_runs_every_step(tmp_path):
    local = m30k_copy(tmp_path, ("en", "fr"))
    epoch_checkpoints(tmp_path, range(44, 54))
    proc = run(tmp_path, "multi30k.sh", "en", "fr", NMT_DATA_DIR=str(local), HOURS="0.5")
    assert proc.returncode == 0, proc.stderr
    assert [c[1] for c in calls(tmp_path)] == [
        "preprocess",
        "train",
        "average-checkpoints",
        "generate",
        "score",
        "score",
        "visualize-attn",
    ]
    cfg, model = parse_train_args(train_argv(tmp_path))
    o = cfg.optim
    assert (
        cfg.arch,
        cfg.stop_time_hours,
        cfg.max_epoch,
        cfg.keep_last_epochs,
        cfg.eval_bleu,
        o.optimizer,
        o.lr,
        o.weight_decay,
    ) == ("transformer_multi30k", 0.5, 100, 10, True, "adamw", 3e-3, 0.03)
    pre = preprocess_argv(tmp_path)
    assert pre[pre.index("--subword-samples") + 1] == "3"  # subword regularization by default
    assert model == {"share_all_embeddings": "true", "dropout": "0.2"}
    flags = set(Path("/proc/cpuinfo").read_text().split()) if Path("/proc/cpuinfo").exists() else set()
    assert cfg.amp == (
        "bf16" if flags & {"amx_bf16", "avx512_bf16"} else "none"
    )  # AMP=auto: bf16 where the CPU multiplies it in hardware
    assert cfg.full_logits == ("avx512_bf16" in flags and "amx_bf16" not in flags)  # products are slow there


def test_multi30k_passes_preprocess_args(tmp_path):
    epoch_checkpoints(tmp_path, range(1, 6))
    proc = run(
        tmp_path,
        "multi30k.sh",
        "en",
        "de",
        NMT_DATA_DIR=str(m30k_copy(tmp_path, ("en", "de"))),
        PREPROCESS_ARGS="--subword-samples 3 --subword-alpha 0.5",
    )
    assert proc.returncode == 0, proc.stderr
    pre = [c for c in calls(tmp_path) if c[1] == "preprocess"]
    assert len(pre) == 1 and pre[0][-4:] == ["--subword-samples", "3", "--subword-alpha", "0.5"]


def test_multi30k_samples_and_weight_decay_can_be_turned_off(tmp_path):
    epoch_checkpoints(tmp_path, range(1, 6))
    proc = run(
        tmp_path, "multi30k.sh", "en", "de", NMT_DATA_DIR=str(m30k_copy(tmp_path, ("en", "de"))), SAMPLES="0", WD="0"
    )
    assert proc.returncode == 0, proc.stderr
    pre = preprocess_argv(tmp_path)
    assert pre[pre.index("--subword-samples") + 1] == "0"
    assert parse_train_args(train_argv(tmp_path))[0].optim.weight_decay == 0.0


@pytest.mark.parametrize("trim, flag", [(None, True), ("1", True), ("0", False)])
def test_multi30k_trims_the_output_layer_unless_told_not_to(tmp_path, trim, flag):
    epoch_checkpoints(tmp_path, range(1, 6))
    env = {"TRIM": trim} if trim is not None else {}
    proc = run(tmp_path, "multi30k.sh", "en", "de", NMT_DATA_DIR=str(m30k_copy(tmp_path, ("en", "de"))), **env)
    assert proc.returncode == 0, proc.stderr
    (pre,) = [c for c in calls(tmp_path) if c[1] == "preprocess"]
    assert ("--trim-target-vocab" in pre) == flag and "--joined-dictionary" in pre


@pytest.mark.parametrize("amp", ["none", "bf16"])
def test_multi30k_amp_setting_reaches_training(tmp_path, amp):
    epoch_checkpoints(tmp_path, range(1, 6))
    proc = run(tmp_path, "multi30k.sh", "en", "de", NMT_DATA_DIR=str(m30k_copy(tmp_path, ("en", "de"))), AMP=amp)
    assert proc.returncode == 0, proc.stderr
    cfg = parse_train_args(train_argv(tmp_path))[0]
    assert (cfg.amp, cfg.full_logits) == (amp, False)
    assert cfg.pad_to_multiple == {"none": 1, "bf16": 8}[amp]  # few shapes where bf16 kernels are generated


@pytest.mark.parametrize(
    "epochs, avg, expect",
    [
        (range(44, 54), "10", 10),
        (range(15, 25), "10", 5),
        (range(13, 23), "10", 4),
        (range(1, 3), "10", 1),
        (range(1, 2), "10", 1),
        (range(91, 101), "3", 3),
    ],
)
def test_multi30k_averages_the_last_fifth_of_the_epochs(tmp_path, epochs, avg, expect):
    local = m30k_copy(tmp_path, ("en", "de"))
    epoch_checkpoints(tmp_path, epochs)
    proc = run(tmp_path, "multi30k.sh", "en", "de", NMT_DATA_DIR=str(local), AVG=avg)
    assert proc.returncode == 0, proc.stderr
    average = next(c for c in calls(tmp_path) if c[1] == "average-checkpoints")
    assert average[average.index("--num-epoch-checkpoints") + 1] == str(expect)
    assert f"average the last {expect} epoch checkpoints (of {epochs[-1]} epochs)" in proc.stdout


def test_multi30k_without_an_epoch_checkpoint_stops_before_averaging(tmp_path):
    local = m30k_copy(tmp_path, ("en", "de"))
    epoch_checkpoints(tmp_path, range(0))
    line = one_error_line(run(tmp_path, "multi30k.sh", "en", "de", NMT_DATA_DIR=str(local)))
    assert "no epoch checkpoint" in line and "raise HOURS" in line
    assert [c[1] for c in calls(tmp_path)] == ["preprocess", "train"]


# ------------------------------------------------------------------ language_model.sh end to end (fake nmt)
def test_language_model_trains_both_models_and_runs_every_step(tmp_path):
    proc = run(tmp_path, "language_model.sh", NMT_DATA_DIR=str(m30k_copy(tmp_path, ("en",))), EPOCHS="3")
    assert proc.returncode == 0, proc.stderr
    steps = [c[1] for c in calls(tmp_path)]
    assert (
        steps
        == ["preprocess", "train", "train", *["eval-lm"] * 3, *["generate"] * 4, "fill-mask"] + ["visualize-attn"] * 2
    )
    pre = preprocess_argv(tmp_path)
    assert "--only-source" in pre and pre[pre.index("--source-lang") + 1] == "en" and "--target-lang" not in pre
    trains = [parse_train_args(c[2:])[0] for c in calls(tmp_path) if c[1] == "train"]
    assert [(t.task, t.arch, t.max_epoch, t.lm.tokens_per_sample, t.label_smoothing) for t in trains] == [
        ("language_modeling", "transformer_lm_tiny", 3, 128, 0.0),
        ("masked_lm", "mlm_tiny", 3, 128, 0.0),
    ]
    assert all(t.save_init_checkpoint for t in trains)  # the heatmaps compare against it
    out = tmp_path / "work" / "out"
    prompts = (out / "prompts.txt").read_text().splitlines()
    # each prompt beside its own continuations: the fake writes "then I of J" for prompt I, sample J
    assert (out / "topp.txt").read_text().splitlines() == [
        f"{p} then {i} of {j}" for i, p in enumerate(prompts) for j in range(3)
    ]
    assert (out / "greedy.txt").read_text().splitlines() == [f"{p} then {i} of 0" for i, p in enumerate(prompts)]
    fill = [c for c in calls(tmp_path) if c[1] == "fill-mask"][0]
    assert fill[fill.index("--input") + 1] == str(out / "masked.txt")
    assert all("<mask>" in line for line in (out / "masked.txt").read_text().splitlines())


def test_language_model_texts_are_not_corpus_sentences():
    corpus = Path(__file__).resolve().parents[3] / "shared" / "data" / "multi30k"
    if not corpus.is_dir():
        pytest.skip("no local Multi30k copy")
    captions = {
        line.strip().lower() for f in corpus.glob("*.en") for line in f.read_text(encoding="utf-8").splitlines()
    }
    text = (RECIPES / "language_model.sh").read_text()
    written = re.findall(r"<< 'TEXT'\n(.*?)\nTEXT\n", text, flags=re.S)
    ours = [line for block in written for line in block.splitlines()] + re.findall(r'--source "([^"]+)"', text)
    assert len(ours) == 13
    for line in ours:  # a masked sentence is checked with each word that fills a mask in the corpus
        pattern = re.compile(re.escape(line.lower()).replace(re.escape("<mask>"), r"\S+") + "$")
        assert not any(pattern.match(c) for c in captions), line


# ------------------------------------------------------------------ iwslt14_de_en.sh end to end (fake nmt)
IWSLT_TESTS = [f"IWSLT14.{t}" for t in ("TED.dev2010", "TEDX.dev2012", "TED.tst2010", "TED.tst2011", "TED.tst2012")]


def iwslt_files(n_text: int = 230) -> dict[str, list[str]]:
    """The layout of de-en.tgz: tagged training text (metadata lines, then sentences) and <seg> test files."""
    files = {}
    for lang, word in {"de": "Über Satz", "en": "Sentence"}.items():
        files[f"de-en/train.tags.de-en.{lang}"] = [
            "<url>http://example.org/talk</url>",
            "<keywords>a</keywords>",
            "<speaker>A</speaker>",
            "<talkid>1</talkid>",
            f"<title>{word} Title</title>",
            f"<description>{word} Summary</description>",
            *(f"  {word} {i} " for i in range(n_text)),
        ]
        for k, name in enumerate(IWSLT_TESTS):  # 5 x 1350 = 6750 lines, the real test set's size
            files[f"de-en/{name}.de-en.{lang}.xml"] = [
                '<doc docid="1">',
                f"<talkid>{k}</talkid>",
                *(f'<seg id="{i + 1}"> {word} T{k}-{i} </seg>' for i in range(1350)),
                "</doc>",
            ]
    return files


@pytest.mark.parametrize("layout", ["archive", "directory"])
def test_iwslt_prepares_the_splits_and_calls_nmt_with_real_flags(tmp_path, layout):
    local = tmp_path / "local"
    if layout == "archive":
        make_tgz(local / "de-en.tgz", iwslt_files())
    else:
        for name, lines in iwslt_files().items():
            write_lines(local / name, lines)
    proc = run(tmp_path, "iwslt14_de_en.sh", NMT_DATA_DIR=str(local), EPOCHS="3", AVG="2")
    assert proc.returncode == 0, proc.stderr
    raw = tmp_path / "work" / "raw"
    train = (raw / "train.de").read_text(encoding="utf-8").splitlines()
    valid = (raw / "valid.de").read_text(encoding="utf-8").splitlines()
    test = (raw / "test.en").read_text().splitlines()
    text = ["über satz title", "über satz summary"] + [f"über satz {i}" for i in range(230)]
    assert valid == text[22::23] and train == [t for i, t in enumerate(text) if (i + 1) % 23]
    assert len(test) == 6750 and test[0] == "sentence t0-0" and test[1350] == "sentence t1-0"
    assert (raw / "train.en").read_text().splitlines()[2] == "sentence 0"

    cfg, model = parse_train_args(train_argv(tmp_path))
    o = cfg.optim
    assert (
        cfg.arch,
        cfg.max_epoch,
        cfg.max_tokens,
        cfg.eval_bleu,
        cfg.best_checkpoint_metric,
        cfg.label_smoothing,
        o.optimizer,
        o.lr,
        o.adam_betas,
        o.lr_scheduler,
        o.warmup_updates,
        o.weight_decay,
    ) == ("transformer_iwslt_de_en", 3, 4096, True, "bleu", 0.1, "adamw", 5e-4, (0.9, 0.98), "inverse_sqrt", 4000, 1e-4)
    assert model == {"share_decoder_input_output_embed": "true", "dropout": "0.3"}
    names = [c[1] for c in calls(tmp_path)]
    assert names == ["preprocess", "train", "average-checkpoints", "generate", "score"]
    pre = " ".join(calls(tmp_path)[0])
    assert "--vocab-size 10000 --joined-dictionary --max-len 175 --max-len-ratio 1.5" in pre

    proc = run(tmp_path, "iwslt14_de_en.sh", NMT_DATA_DIR=str(local), EPOCHS="3", AVG="2")  # re-run
    assert proc.returncode == 0 and [c[1] for c in calls(tmp_path)][5:] == names[1:]  # no second preprocess


# ------------------------------------------------------------------ wmt14_en_de.sh end to end (fake torchrun)
def wmt_archives(root: Path) -> Path:
    def pair(stem: str, n: int) -> dict[str, list[str]]:
        return {f"{stem}.en": [f"{stem} en {i}" for i in range(n)], f"{stem}.de": [f"{stem} de {i}" for i in range(n)]}

    make_tgz(
        root / "training-parallel-europarl-v7.tgz",
        {f"training/{k}": v for k, v in {**pair("europarl-v7.de-en", 40), **pair("europarl-v7.fr-en", 3)}.items()},
    )
    make_tgz(root / "training-parallel-commoncrawl.tgz", pair("commoncrawl.de-en", 30))
    make_tgz(
        root / "training-parallel-nc-v9.tgz",
        {f"training/{k}": v for k, v in pair("news-commentary-v9.de-en", 20).items()},
    )
    make_tgz(root / "dev.tgz", {f"dev/{k}": v for k, v in pair("newstest2013", 3000).items()})
    sgm = {
        lang: ['<srcset setid="newstest2014">', '<doc docid="d1">']
        + [f'<seg id="{i + 1}">test {lang} {i} </seg>' for i in range(3003)]
        + ["</doc>", "</srcset>"]
        for lang in ("en", "de")
    }
    make_tgz(
        root / "test-full.tgz",
        {"test-full/newstest2014-deen-src.en.sgm": sgm["en"], "test-full/newstest2014-deen-ref.de.sgm": sgm["de"]},
    )
    return root


@pytest.mark.parametrize(
    "env, freq, lr, dropout, avg",
    [
        ({"GPUS": "8"}, 16, 1e-3, "0.3", 10),
        ({"GPUS": "1"}, 128, 1e-3, "0.3", 10),
        ({"GPUS": "3"}, 43, 1e-3, "0.3", 10),
        ({"GPUS": "4", "ARCH": "transformer_base", "AMP": "bf16"}, 2, 7e-4, "0.1", 5),
    ],
)
def test_wmt_prepares_the_data_and_sizes_the_batch(tmp_path, env, freq, lr, dropout, avg):
    proc = run(tmp_path, "wmt14_en_de.sh", NMT_DATA_DIR=str(wmt_archives(tmp_path / "local")), **env)
    assert proc.returncode == 0, proc.stderr
    raw = tmp_path / "work" / "raw"
    train_en = (raw / "train.en").read_text().splitlines()
    assert len(train_en) == 90 and train_en[0] == "europarl-v7.de-en en 0"
    assert train_en[-1] == "news-commentary-v9.de-en en 19"
    assert (raw / "valid.de").read_text().splitlines()[5] == "newstest2013 de 5"
    assert (raw / "test.de").read_text().splitlines()[:2] == ["test de 0", "test de 1"]
    assert len((raw / "test.en").read_text().splitlines()) == 3003

    launch = next(c for c in calls(tmp_path) if c[0] == "torchrun")
    assert launch[1:7] == ["--standalone", "--nproc_per_node", env["GPUS"], "-m", "nmt", "train"]
    cfg, model = parse_train_args(train_argv(tmp_path))
    assert (cfg.arch, cfg.update_freq, cfg.max_tokens, cfg.amp) == (
        env.get("ARCH", "transformer_big"),
        freq,
        3584,
        env.get("AMP", "fp16"),
    )
    assert (cfg.optim.lr, cfg.optim.warmup_updates, cfg.optim.warmup_init_lr, cfg.keep_interval_updates) == (
        lr,
        4000,
        1e-7,
        avg,
    )
    assert model == {"share_all_embeddings": "true", "dropout": dropout}
    avg_call = next(c for c in calls(tmp_path) if c[1] == "average-checkpoints")
    assert avg_call[avg_call.index("--num-update-checkpoints") + 1] == str(avg)
    gen = next(c for c in calls(tmp_path) if c[1] == "generate")
    assert gen[gen.index("--beam") + 1] == "4" and gen[gen.index("--lenpen") + 1] == "0.6"


def test_wmt_second_node_joins_the_rendezvous_and_only_trains(tmp_path):
    local = wmt_archives(tmp_path / "local")
    assert run(tmp_path, "wmt14_en_de.sh", NMT_DATA_DIR=str(local), PREPARE_ONLY="1").returncode == 0
    assert [c[1] for c in calls(tmp_path)] == ["preprocess"]
    proc = run(tmp_path, "wmt14_en_de.sh", GPUS="8", NNODES="2", NODE_RANK="1", MASTER_ADDR="h0", MASTER_PORT="1234")
    assert proc.returncode == 0, proc.stderr
    launch = calls(tmp_path)[1]
    assert launch[:9] == [
        "torchrun",
        "--nnodes",
        "2",
        "--node_rank",
        "1",
        "--rdzv_endpoint",
        "h0:1234",
        "--nproc_per_node",
        "8",
    ]
    assert parse_train_args(train_argv(tmp_path))[0].update_freq == 8 and len(calls(tmp_path)) == 2


@pytest.mark.parametrize("fail", [False, True])
def test_wmt_takes_the_test_sets_from_sacrebleu(tmp_path, fail):
    local, orig = wmt_archives(tmp_path / "local"), tmp_path / "work" / "orig"
    orig.mkdir(parents=True)
    for name in list(WMT_ARCHIVES.values())[:3]:  # the training corpora are already downloaded
        (orig / name).write_bytes((local / name).read_bytes())
    fake = tmp_path / "sacrebleu"  # called as: -t SET -l en-de --echo FIELD
    write_lines(
        fake,
        [
            "#!/usr/bin/env bash",
            "n=3000; [[ $2 == wmt14/full ]] && n=3003",
            '[[ -z "$SB_FAIL" ]] || { echo fetching >&2; echo "no network" >&2; exit 1; }',
            'for ((i = 0; i < n; i++)); do echo "$2 $6 $i"; done',
        ],
    )
    fake.chmod(0o755)
    proc = run(
        tmp_path, "wmt14_en_de.sh", SACREBLEU=str(fake), SB_FAIL="1" if fail else "", PREPARE_ONLY="1", **WMT_DEAD
    )
    raw = tmp_path / "work" / "raw"
    if fail:
        assert one_error_line(proc).startswith("error: sacrebleu cannot fetch wmt13 en-de (no network)")
        assert [f for f in files_under(raw) if not f.startswith(".")] == [] and calls(tmp_path) == []
    else:
        assert proc.returncode == 0, proc.stderr
        assert (raw / "valid.en").read_text().splitlines()[0] == "wmt13 src 0"
        assert (raw / "test.de").read_text().splitlines()[3002] == "wmt14/full ref 3002"


# ------------------------------------------------------------------ every flag in the recipe text exists
@pytest.mark.parametrize("script", ALL)
def test_every_flag_the_recipes_pass_exists(script):
    text = re.sub(r"\\\n\s*", " ", (RECIPES / script).read_text())  # continuation lines joined
    found = re.findall(r"(?:\$NMT|\$RUN_NMT|-m nmt)\s+([a-z-]+)\b([^\n|]*)", text)  # (command, rest of line)
    options = {
        name: {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}
        for name, cmd in typer.main.get_command(app).commands.items()
    }
    trains = [rest for cmd, rest in found if cmd == "train"]
    assert len(trains) == 1, found
    arch = re.search(r"--arch\s+(\S+)", trains[0]).group(1)  # a variable ("$ARCH"): any registered arch
    archs = list(ARCHS) if "$" in arch else [arch]
    configs = (C.TrainConfig, C.OptimConfig, C.LanguageModelConfig)
    valid = {f.name for cls in configs for f in dataclasses.fields(cls)} | {
        f.name for a in archs for f in dataclasses.fields(arch_config(a))
    }
    flags = re.findall(r"(?<![\w-])--([a-z][a-z0-9-]*)", trains[0])
    assert len(flags) >= 8
    unknown = [f for f in flags if f.replace("-", "_") not in valid]
    assert unknown == [], f"{script}: nmt train has no {unknown}"
    for cmd, rest in found:
        if cmd != "train":
            assert cmd in options, f"{script}: no command nmt {cmd}"
            bad = [f for f in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", rest) if f not in options[cmd]]
            assert bad == [], f"{script}: nmt {cmd} has no {bad}"
