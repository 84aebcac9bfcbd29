#!/usr/bin/env bash
# Quickstart on the embedded English->French toy corpus (no download needed):
# writes toy data, preprocesses it into a binarized data directory (joined SentencePiece
# vocabulary), then trains, translates, scores and plots attention.
#
# Everything goes under $WORK (default: work/quickstart). Overridable:
#   WORK=/tmp/qs PAIRS=20000 VOCAB=360 WORKERS=1 bash recipes/quickstart.sh
set -euo pipefail

WORK="${WORK:-work/quickstart}"
PAIRS="${PAIRS:-20000}"
VOCAB="${VOCAB:-360}"      # the toy language has ~300 words a side; unigram SentencePiece caps near 400
WORKERS="${WORKERS:-1}"
NMT="${NMT:-nmt}"          # e.g. NMT="python -m nmt"

RAW="$WORK/raw"
DATA="$WORK/data-bin"
mkdir -p "$WORK"

echo "== toy data -> $RAW"
$NMT toy-data --out "$RAW" --pairs "$PAIRS" --seed 1

echo "== preprocess -> $DATA"
$NMT preprocess --source-lang en --target-lang fr \
    --trainpref "$RAW/train" --validpref "$RAW/valid" --testpref "$RAW/test" \
    --destdir "$DATA" --vocab-size "$VOCAB" --joined-dictionary --workers "$WORKERS" --force

# == train: TO BE ADDED when `nmt train` exists
#    (e.g. nmt train "$DATA" --arch transformer_tiny --save-dir "$WORK/ckpt" ...)

# == generate: TO BE ADDED when `nmt generate` exists
#    (translate the test split with "$WORK/ckpt/checkpoint_best.pt" into "$WORK/test.hyp.fr")

# == score: TO BE ADDED when `nmt score` exists
#    (BLEU / chrF of "$WORK/test.hyp.fr" against "$RAW/test.fr")

# == visualize-attn: TO BE ADDED when `nmt visualize-attn` exists
#    (attention heatmaps of one sentence into "$WORK/attn")

echo "== done: data in $DATA (train, generate, score and visualize-attn steps are not in this recipe yet)"
