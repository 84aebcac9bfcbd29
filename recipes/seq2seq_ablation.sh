#!/usr/bin/env bash
# LSTM seq2seq ablations on Multi30k en->fr, each variant trained for the same fixed budget of
# updates, then translated (beam 5) and scored; writes a Markdown table with parameters of
# encoder/decoder, updates, valid ppl, test BLEU and wall time, plus the machine it ran on.
#
# Variants: baseline (lstm_seq2seq), bidirectional encoder with concat / average / linear
# bridge, reversed source, packing off, three-way weight tying, QKV, additive (Bahdanau) and
# multi-head attention, a 4-vs-2 layer mismatch, and transformer_tiny for contrast.
#
#   NMT_DATA_DIR=../shared/data/multi30k bash recipes/seq2seq_ablation.sh
#   BUDGET=2000 (updates per variant)  WORK=work/ablation  OUT=docs/lstm.md  SRC=en TGT=fr
#   TEST=test2016 (test split prefix)  VOCAB=8000  VARIANTS="baseline additive" (a subset)  NMT="python -m nmt"
#
# Time: BUDGET updates x 12 variants; on a 2-core CPU count about 1-2 s per update for the
# LSTM variants at --max-tokens 4096.
set -euo pipefail

DATA_RAW="${NMT_DATA_DIR:?set NMT_DATA_DIR to a directory with train/valid/test2016 .en/.fr files}"
WORK="${WORK:-work/ablation}"
OUT="${OUT:-docs/lstm.md}"
SRC="${SRC:-en}"
TGT="${TGT:-fr}"
TEST="${TEST:-test2016}"
BUDGET="${BUDGET:-2000}"
MAX_TOKENS="${MAX_TOKENS:-4096}"
VOCAB="${VOCAB:-8000}"
NMT="${NMT:-nmt}"
PY="${PYTHON:-python3}"

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

for f in "train.$SRC" "train.$TGT" "valid.$SRC" "valid.$TGT" "$TEST.$SRC" "$TEST.$TGT"; do
  [ -f "$DATA_RAW/$f" ] || { echo "error: $DATA_RAW/$f not found" >&2; exit 2; }
done

DATA="$WORK/data-bin"
mkdir -p "$WORK/logs" "$WORK/hyp"
if [ ! -f "$DATA/meta.json" ]; then
  $NMT preprocess --source-lang "$SRC" --target-lang "$TGT" --trainpref "$DATA_RAW/train" \
      --validpref "$DATA_RAW/valid" --testpref "$DATA_RAW/$TEST" --destdir "$DATA" \
      --vocab-size "$VOCAB" --joined-dictionary
fi

for name in $ORDER; do
  [ -n "${FLAGS[$name]+x}" ] || { echo "error: unknown variant $name" >&2; exit 2; }
  echo "== $name: ${FLAGS[$name]}"
  start=$(date +%s)
  # shellcheck disable=SC2086  # the flags are meant to split into words
  $NMT train "$DATA" ${FLAGS[$name]} --save-dir "$WORK/ckpt/$name" --max-tokens "$MAX_TOKENS" \
      --max-update "$BUDGET" --lr 1e-3 --warmup-updates $((BUDGET / 10 + 1)) --clip-norm 1.0 \
      --log-format json --keep-last-epochs 0 2> "$WORK/logs/$name.log"
  end=$(date +%s)
  echo $((end - start)) > "$WORK/logs/$name.seconds"
  $NMT generate --path "$WORK/ckpt/$name/checkpoint_best.pt" --input "$DATA_RAW/$TEST.$SRC" --beam 5 \
      --output "$WORK/hyp/$name.$TGT" 2>> "$WORK/logs/$name.log"
  $NMT score --sys "$WORK/hyp/$name.$TGT" --ref "$DATA_RAW/$TEST.$TGT" --json > "$WORK/logs/$name.score.json"
done

"$PY" - "$WORK" "$OUT" "$BUDGET" "$ORDER" <<'EOF'
import json, os, platform, subprocess, sys

work, out, budget, order = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split()
rows = []
for name in order:
    params, valid, updates = {}, {}, 0
    for line in open(f"{work}/logs/{name}.log", encoding="utf-8"):
        if "parameters: " in line:
            params = json.loads(line.split("parameters: ", 1)[1])
        if "{" in line and '"tag"' in line:
            rec = json.loads(line[line.index("{"):])
            if "valid on" in rec["tag"]:
                valid = rec
        if "nmt.train | done in " in line:  # "done in 12.3 s, 2000 updates"
            updates = int(line.rsplit(",", 1)[1].split()[0])
    score = json.load(open(f"{work}/logs/{name}.score.json", encoding="utf-8"))
    bleu = score["systems"][0]["bleu"]["score"]
    seconds = int(open(f"{work}/logs/{name}.seconds").read())
    rows.append((name, params.get("encoder", 0), params.get("decoder", 0), params.get("total", 0), updates,
                 valid.get("ppl", float("nan")), bleu, seconds))
cpu = subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p'"], capture_output=True, text=True).stdout.strip()
with open(out, "w", encoding="utf-8") as f:
    f.write("# LSTM seq2seq ablations\n\n")
    f.write(f"Multi30k, each variant trained for {budget} updates, beam 5 on the test set, sacreBLEU.\n")
    f.write(f"Machine: {cpu or platform.processor()}, {os.cpu_count()} cores. Command: "
            "`NMT_DATA_DIR=... bash recipes/seq2seq_ablation.sh`.\n\n")
    f.write("| variant | encoder params | decoder params | total params | updates | valid ppl | test BLEU | time (s) |\n")
    f.write("|---|---|---|---|---|---|---|---|\n")
    for r in rows:
        f.write(f"| {r[0]} | {r[1]:,} | {r[2]:,} | {r[3]:,} | {r[4]} | {r[5]:.2f} | {r[6]:.2f} | {r[7]} |\n")
print(f"wrote {out}")
EOF
