"""recipes/seq2seq_ablation.sh with a fake `nmt`: argument errors, the flags of every variant,
the table, and resuming (finished variants kept, an interrupted one redone with its time added)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nmt.flags import parse_train_args
from nmt.models import arch_config

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "seq2seq_ablation.sh"
ALL = (
    "baseline bi_concat bi_average bi_linear reversed no_packing tied qkv additive multihead "
    "layers_4_vs_2 transformer_tiny"
).split()
# A fake nmt: records its argv; train logs what the real one logs (sizes, a validation, "done in")
# and leaves checkpoint_best.pt, failing instead for the variant named in $FAIL_DIR; generate
# writes one line per input line; score prints a BLEU derived from the system file's name.
FAKE = f"""#!{sys.executable}
import json, os, sys
argv = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as f: f.write(json.dumps(argv) + "\\n")
opt = lambda name: argv[argv.index(name) + 1]
if argv[0] == "preprocess":
    os.makedirs(opt("--destdir"), exist_ok=True)
    open(opt("--destdir") + "/meta.json", "w").write("{{}}")
elif argv[0] == "train":
    save = opt("--save-dir")
    if os.path.basename(save) == os.environ.get("FAIL_DIR"):
        sys.exit("interrupted")
    os.makedirs(save, exist_ok=True)
    open(save + "/checkpoint_best.pt", "w").write("x")
    n = len(os.path.basename(save))
    print("t | INFO | nmt.train | parameters: " + json.dumps({{"encoder": 1000 * n, "decoder": 2000 * n, "total": 3500 * n}}), file=sys.stderr)
    print("t | INFO | nmt.train | " + json.dumps({{"tag": "epoch 001 | valid on 'valid' subset", "ppl": 99.0}}), file=sys.stderr)
    print("t | INFO | nmt.train | " + json.dumps({{"tag": "epoch 002 | valid on 'valid' subset", "ppl": n + 0.25}}), file=sys.stderr)
    print(f"t | INFO | nmt.train | done in 1.0 s, {{opt('--max-update')}} updates", file=sys.stderr)
elif argv[0] == "generate":
    lines = open(opt("--input"), encoding="utf-8").read().splitlines()
    open(opt("--output"), "w", encoding="utf-8").write("".join(f"h {{x}}\\n" for x in lines))
elif argv[0] == "score":
    name = os.path.basename(opt("--sys")).split(".")[0]
    print(json.dumps({{"systems": [{{"bleu": {{"score": 10.0 + len(name) / 8}}}}]}}))
"""


def data_dir(tmp: Path) -> Path:
    d = tmp / "m30k"
    d.mkdir()
    for split in ("train", "valid", "test2016"):
        for lang in ("en", "fr"):
            (d / f"{split}.{lang}").write_text(f"{split} {lang} one\n{split} {lang} two\n", encoding="utf-8")
    return d


def run(tmp: Path, **env: str) -> subprocess.CompletedProcess:
    fake = tmp / "bin" / "nmt"
    fake.parent.mkdir(exist_ok=True)
    fake.write_text(FAKE)
    fake.chmod(0o755)
    base = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp),
        "FAKE_LOG": str(tmp / "calls.jsonl"),
        "NMT": str(fake),
        "PYTHON": sys.executable,
        "WORK": str(tmp / "work"),
        "OUT": str(tmp / "lstm.md"),
    }
    return subprocess.run(
        ["bash", str(RECIPE)], cwd=tmp, env={**base, **env}, capture_output=True, text=True, timeout=120
    )


def calls(tmp: Path, command: str) -> list[list[str]]:
    log = tmp / "calls.jsonl"
    rows = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return [r for r in rows if r[0] == command]


def test_header_and_strict_mode():
    text = RECIPE.read_text()
    assert subprocess.run(["bash", "-n", str(RECIPE)]).returncode == 0
    assert os.access(RECIPE, os.X_OK) and text.startswith("#!/usr/bin/env bash\n#") and "\nset -euo pipefail\n" in text


@pytest.mark.parametrize(
    "env, message",
    [
        ({}, "error: set NMT_DATA_DIR"),
        ({"VARIANTS": "baseline tranformer"}, "error: unknown variant 'tranformer'"),
        ({"BUDGET": "0"}, "error: BUDGET must be a positive integer"),
        ({"MAX_TOKENS": "4k"}, "error: MAX_TOKENS must be a positive integer"),
    ],
)
def test_bad_settings_exit_2_with_one_line_before_any_work(tmp_path, env, message):
    if env:  # every case but the first has the data
        env = {"NMT_DATA_DIR": str(data_dir(tmp_path)), **env}
    proc = run(tmp_path, **env)
    assert proc.returncode == 2 and proc.stderr.strip().startswith(message) and len(proc.stderr.splitlines()) == 1
    assert not (tmp_path / "calls.jsonl").exists() and not (tmp_path / "work").exists()


def test_missing_data_file_is_named(tmp_path):
    d = data_dir(tmp_path)
    (d / "valid.fr").unlink()
    proc = run(tmp_path, NMT_DATA_DIR=str(d))
    assert proc.returncode == 2 and proc.stderr.strip() == f"error: {d}/valid.fr is missing or unreadable"


def test_every_variant_trains_with_real_flags_and_the_same_budget(tmp_path):
    proc = run(tmp_path, NMT_DATA_DIR=str(data_dir(tmp_path)), BUDGET="300", LR="2e-3")
    assert proc.returncode == 0, proc.stderr
    trains = calls(tmp_path, "train")
    assert [Path(c[c.index("--save-dir") + 1]).name for c in trains] == ALL
    archs = []
    for argv in trains:
        cfg, overrides = parse_train_args(argv[1:])  # the real parser accepts every flag
        arch_config(cfg.arch, overrides)  # and the model overrides fit the architecture
        assert (cfg.max_update, cfg.optim.lr, cfg.max_tokens, cfg.optim.warmup_updates) == (300, 2e-3, 4096, 31)
        archs.append((cfg.arch, overrides))
    assert archs[ALL.index("no_packing")] == ("lstm_seq2seq", {"pack": "false"})
    assert archs[ALL.index("layers_4_vs_2")] == ("lstm_seq2seq", {"encoder_layers": "4", "decoder_layers": "2"})
    gens = calls(tmp_path, "generate")
    assert all(
        g[g.index("--beam") + 1] == "5" and g[g.index("--path") + 1].endswith("/checkpoint_best.pt") for g in gens
    )
    table = (tmp_path / "lstm.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| variant")]
    assert [r.split(" | ")[0][2:] for r in rows] == ALL
    n = len("baseline")
    assert (
        rows[0]
        == f"| baseline | {1000 * n:,} | {2000 * n:,} | {3500 * n:,} | 300 | {n + 0.25:.2f} | {10 + n / 8:.2f} | "
        f"{rows[0].rsplit(' | ', 1)[1]}"
    )
    assert "BUDGET=300" in table and "LR=2e-3" in table and "en->fr" in table
    commit = subprocess.run(
        ["git", "-C", str(RECIPE.parent), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    assert (f"seq2seq_ablation.sh` at commit {commit}\n" in table) if commit else ("` at commit" not in table)


def test_rerun_keeps_finished_variants_and_redoes_the_interrupted_one(tmp_path):
    d = str(data_dir(tmp_path))
    proc = run(tmp_path, NMT_DATA_DIR=d, VARIANTS="baseline tied additive", FAIL_DIR="tied")
    logs = tmp_path / "work" / "logs"
    assert (
        proc.returncode == 2
        and proc.stderr.splitlines()[-1]
        == f"error: training tied stopped (exit 1, see {logs}/tied.log); a re-run resumes it"
    )
    assert not (tmp_path / "lstm.md").exists()
    assert (logs / "baseline.done").exists() and not (logs / "tied.done").exists()
    assert (logs / "tied.seconds").exists()  # the interrupted run's time is kept
    (logs / "tied.seconds").write_text("100\n")
    (tmp_path / "calls.jsonl").unlink()
    proc = run(tmp_path, NMT_DATA_DIR=d, VARIANTS="baseline tied additive")
    assert proc.returncode == 0, proc.stderr
    assert [Path(c[c.index("--save-dir") + 1]).name for c in calls(tmp_path, "train")] == ["tied", "additive"]
    assert calls(tmp_path, "preprocess") == []  # the data directory is kept too
    assert int((logs / "tied.seconds").read_text()) >= 100
    rows = [line for line in (tmp_path / "lstm.md").read_text().splitlines() if line.startswith("| ")][1:]
    assert [r.split(" | ")[0][2:] for r in rows] == ["baseline", "tied", "additive"]
