#!/usr/bin/env bash
# LSTM seq2seq ablations on Multi30k (en->fr by default): every variant trained for the same
# budget of updates with the same settings, its best checkpoint (valid loss) translating the test
# set with beam 5, sacreBLEU; then a Markdown table (parameters of encoder and decoder, updates,
# valid ppl, test BLEU, training time) with the command and the machine, written to OUT.
#
# Variants: baseline (lstm_seq2seq: 2 layers, 512 hidden, no attention), bidirectional encoder
# with concat / average / linear bridge, reversed source, packing off, three-way weight tying,
# QKV (Luong-style with input feeding), additive (Bahdanau) and multi-head attention, a 4-vs-2
# layer mismatch, and transformer_tiny for contrast.
#
#   NMT_DATA_DIR=path/to/multi30k bash recipes/seq2seq_ablation.sh
#   BUDGET=600 (updates per variant)  MAX_TOKENS=4096  LR=1e-3  VOCAB=8000  SRC=en TGT=fr
#   TEST=test2016  THREADS=2  WORK=work/ablation  OUT=docs/lstm.md  NMT=nmt  PYTHON=python3
#   VARIANTS="baseline additive" (a subset, in this order)
#
# Needs: a local Multi30k copy (NMT_DATA_DIR), no GPU; about 4 hours for all twelve variants on a
# 2-core CPU (~1.9 s per LSTM update at 4096 tokens, ~20 minutes a variant). Resumable: a finished
# variant is skipped by a re-run, an interrupted one resumes from its last checkpoint.
# Reaches, with the defaults on a 2-core AMD EPYC: the table in docs/lstm.md (test2016 BLEU: the
# baseline 4.20, additive attention 21.74, transformer_tiny 42.91).
set -euo pipefail

# shellcheck source=recipes/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

DATA_RAW="${NMT_DATA_DIR:-}"
[[ -n "$DATA_RAW" ]] || die "set NMT_DATA_DIR to a directory with the Multi30k train/valid/test files"
WORK="${WORK:-work/ablation}"
OUT="${OUT:-docs/lstm.md}"
SRC="${SRC:-en}"
TGT="${TGT:-fr}"
TEST="${TEST:-test2016}"
BUDGET="${BUDGET:-600}"
MAX_TOKENS="${MAX_TOKENS:-4096}"
LR="${LR:-1e-3}"
VOCAB="${VOCAB:-8000}"
THREADS="${THREADS:-2}"
NMT="${NMT:-nmt}"
PY="${PYTHON:-python3}"
for var in BUDGET MAX_TOKENS VOCAB THREADS; do
    [[ "${!var}" =~ ^[1-9][0-9]*$ ]] || die "$var must be a positive integer, got '${!var}'"
done

declare -A FLAGS=(
    [baseline]="--arch lstm_seq2seq"
    [bi_concat]="--arch lstm_seq2seq --encoder-bidirectional --encoder-hidden-size 256 --bridge concat"
    [bi_average]="--arch lstm_seq2seq --encoder-bidirectional --bridge average"
    [bi_linear]="--arch lstm_seq2seq --encoder-bidirectional --bridge linear"
    [reversed]="--arch lstm_seq2seq --reverse-source"
    [no_packing]="--arch lstm_seq2seq --pack false"
    [tied]="--arch lstm_seq2seq --share-all-embeddings"
    [qkv]="--arch lstm_luong --attention qkv"
    [additive]="--arch lstm_bahdanau"
    [multihead]="--arch lstm_mha"
    [layers_4_vs_2]="--arch lstm_seq2seq --encoder-layers 4 --decoder-layers 2"
    [transformer_tiny]="--arch transformer_tiny"
)
ORDER="${VARIANTS:-baseline bi_concat bi_average bi_linear reversed no_packing tied qkv additive multihead layers_4_vs_2 transformer_tiny}"
for name in $ORDER; do
    [[ -n "${FLAGS[$name]+x}" ]] || die "unknown variant '$name' (known: ${!FLAGS[*]})"
done
for f in "train.$SRC" "train.$TGT" "valid.$SRC" "valid.$TGT" "$TEST.$SRC" "$TEST.$TGT"; do
    [[ -r "$DATA_RAW/$f" ]] || die "$DATA_RAW/$f is missing or unreadable"
done

DATA="$WORK/data-bin"
LOGS="$WORK/logs"
mkdir -p "$LOGS" "$WORK/hyp"
if [[ ! -f "$DATA/meta.json" ]]; then
    echo "== preprocess -> $DATA"
    $NMT preprocess --source-lang "$SRC" --target-lang "$TGT" --trainpref "$DATA_RAW/train" \
        --validpref "$DATA_RAW/valid" --testpref "$DATA_RAW/$TEST" --destdir "$DATA" \
        --vocab-size "$VOCAB" --joined-dictionary --force
fi

for name in $ORDER; do
    if [[ -f "$LOGS/$name.done" ]]; then
        echo "== $name: finished earlier, kept"
        continue
    fi
    echo "== $name: ${FLAGS[$name]} ($BUDGET updates)"
    start=$(date +%s)
    status=0
    # shellcheck disable=SC2086  # the flags are meant to split into words
    $NMT train "$DATA" ${FLAGS[$name]} --save-dir "$WORK/ckpt/$name" --max-tokens "$MAX_TOKENS" \
        --max-update "$BUDGET" --lr "$LR" --warmup-updates $((BUDGET / 10 + 1)) --clip-norm 1.0 \
        --threads "$THREADS" --log-format json --keep-last-epochs 0 2>> "$LOGS/$name.log" || status=$?
    spent=$(( $(date +%s) - start + $(cat "$LOGS/$name.seconds" 2> /dev/null || echo 0) ))
    echo "$spent" > "$LOGS/$name.seconds"  # a resumed variant adds its earlier runs' time
    [[ $status -eq 0 ]] || die "training $name stopped (exit $status, see $LOGS/$name.log); a re-run resumes it"
    $NMT generate --path "$WORK/ckpt/$name/checkpoint_best.pt" --input "$DATA_RAW/$TEST.$SRC" --beam 5 \
        --threads "$THREADS" --output "$WORK/hyp/$name.$TGT" 2>> "$LOGS/$name.log"
    $NMT score --sys "$WORK/hyp/$name.$TGT" --ref "$DATA_RAW/$TEST.$TGT" --json > "$LOGS/$name.score.json.part"
    mv "$LOGS/$name.score.json.part" "$LOGS/$name.score.json"
    touch "$LOGS/$name.done"
done

COMMAND="NMT_DATA_DIR=... BUDGET=$BUDGET MAX_TOKENS=$MAX_TOKENS LR=$LR VOCAB=$VOCAB SRC=$SRC TGT=$TGT bash recipes/seq2seq_ablation.sh"
CODE=$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --short HEAD 2> /dev/null || true)  # empty outside a clone
"$PY" - "$LOGS" "$OUT" "$ORDER" "$COMMAND" "$SRC" "$TGT" "$TEST" "$CODE" <<'EOF'
import json, os, platform, subprocess, sys

logs, out, order, command, src, tgt, test, code = sys.argv[1:]


def sh(command: str) -> str:
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True).stdout.strip()


cpu = sh("lscpu | sed -n 's/^Model name: *//p'") or platform.processor()
gpus = sh("nvidia-smi --query-gpu=name --format=csv,noheader 2> /dev/null").splitlines()
rows = []
for name in order.split():
    params, valid, updates = {}, {}, 0
    for line in open(f"{logs}/{name}.log", encoding="utf-8"):
        if "parameters: " in line:  # the first run of a variant logs its sizes
            params = json.loads(line.split("parameters: ", 1)[1])
        elif "{" in line and '"tag"' in line:
            rec = json.loads(line[line.index("{"):])
            if "valid on" in rec["tag"]:
                valid = rec  # the last validation
        elif "nmt.train | done in " in line:  # "done in 12.3 s, 2000 updates"
            updates = int(line.rsplit(",", 1)[1].split()[0])
    score = json.load(open(f"{logs}/{name}.score.json", encoding="utf-8"))
    bleu = score["systems"][0]["bleu"]["score"]
    seconds = int(open(f"{logs}/{name}.seconds", encoding="utf-8").read())
    rows.append((name, params.get("encoder", 0), params.get("decoder", 0), params.get("total", 0), updates,
                 valid.get("ppl", float("nan")), bleu, seconds))
tmp = out + ".part"
with open(tmp, "w", encoding="utf-8") as f:
    f.write("# LSTM seq2seq ablations\n\n")
    f.write(f"Multi30k {src}->{tgt}; every variant trained for the same number of updates with the same "
            f"settings, then its best checkpoint (valid loss) translates {test} with beam 5; sacreBLEU "
            f"(cased, 13a). Machine: {cpu}, {os.cpu_count()} cores, {', '.join(gpus) or 'no GPU'}.\n\n")
    f.write(f"Command: `{command}`" + (f" at commit {code}" if code else "") + "\n\n")
    f.write("| variant | encoder params | decoder params | total params | updates | valid ppl | test BLEU | training time (s) |\n")
    f.write("|---|---|---|---|---|---|---|---|\n")
    for r in rows:
        f.write(f"| {r[0]} | {r[1]:,} | {r[2]:,} | {r[3]:,} | {r[4]} | {r[5]:.2f} | {r[6]:.2f} | {r[7]} |\n")
os.replace(tmp, out)
print(f"wrote {out}")
EOF
