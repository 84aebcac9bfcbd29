#!/usr/bin/env bash
# Multi30k (29,000 training pairs of image captions) in one command, any direction of en, de, fr:
#
#   NMT_DATA_DIR=path/to/multi30k bash recipes/multi30k.sh en de   # a local copy, offline
#   bash recipes/multi30k.sh en fr                                 # downloads the public release
#
# Steps: check the data (29,000 / 1,014 / 1,000 lines) -> preprocess (joint unigram SentencePiece,
# VOCAB pieces; the output layer over the target's pieces, TRIM; SAMPLES sampled segmentations of
# train, for subword regularization) -> train transformer_multi30k (4+4 layers, D 128, 2.3M
# parameters; dropout 0.2, label smoothing 0.1, AdamW with weight decay WD, lr 3e-3, inverse
# square root after 1000 warmup updates; bf16 where the CPU has AMX or AVX512-BF16) for HOURS of
# wall time -> average the last fifth of the epoch checkpoints (at most AVG) -> translate test2016
# with beam BEAM -> sacreBLEU (BLEU lowercased and cased, chrF) -> attention heatmaps of one sentence.
#
# Needs: the corpus (NMT_DATA_DIR: train, valid, test2016 .en/.de/.fr, raw text; or the network),
# 2 CPU cores (no GPU), 2 GB of memory (1.95 GB peak measured), 0.4 GB of disk; 59 minutes in all.
# Reaches, as it is, on a 2-core Intel Xeon with AMX (bf16), test2016, 2026-12-04: en->de 41.08 BLEU
# lowercased, 40.57 cased, chrF 64.80 (71 epochs); en->fr 61.30, 61.20, chrF 76.33 (62 epochs).
# Slower CPUs train fewer epochs in the hour and score a few tenths lower; see docs/results.md.
#
# Everything goes under $WORK (default work/multi30k-SRC-TGT). Overridable, with their defaults:
#   HOURS=0.97 EPOCHS=100 VOCAB=8000 AVG=10 BEAM=5 LENPEN=1.0 THREADS=2 AMP=auto (none, bf16) TRIM=1
#   SAMPLES=3 WD=0.03 NMT=nmt TRAIN_ARGS="--lr 5e-3" PREPROCESS_ARGS="--spm-model-type bpe" MULTI30K_URL=
# A re-run resumes training from $WORK/ckpt/checkpoint_last.pt and redoes the later steps.
set -euo pipefail

# shellcheck source=recipes/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
usage() { echo "usage: [NMT_DATA_DIR=DIR] bash recipes/multi30k.sh SRC TGT   (SRC, TGT: two of en, de, fr)" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
SRC="$1"; TGT="$2"
for lang in "$SRC" "$TGT"; do [[ "$lang" =~ ^(en|de|fr)$ ]] || usage; done
[[ "$SRC" != "$TGT" ]] || usage

WORK="${WORK:-work/multi30k-$SRC-$TGT}"
HOURS="${HOURS:-0.97}"      # training budget, wall time; the other steps take under a minute
EPOCHS="${EPOCHS:-100}"     # and an epoch cap
VOCAB="${VOCAB:-8000}"
AVG="${AVG:-10}"           # average the last fifth of the epochs trained, at most AVG epoch checkpoints
BEAM="${BEAM:-5}"
LENPEN="${LENPEN:-1.0}"
THREADS="${THREADS:-2}"
AMP="${AMP:-auto}"          # auto: bf16 on CPUs that multiply bf16 natively (AMX or AVX512-BF16; 1.3-1.5x faster training), else none
NMT="${NMT:-nmt}"
TRIM="${TRIM:-1}"           # 1: the output layer covers only the target's pieces (preprocess --trim-target-vocab)
TRAIN_ARGS="${TRAIN_ARGS:-}"
SAMPLES="${SAMPLES:-3}"     # sampled segmentations of train, one per epoch in turn after the best one (0: none)
WD="${WD:-0.03}"           # AdamW's decoupled weight decay (0: none)
PREPROCESS_ARGS="${PREPROCESS_ARGS:-}"  # e.g. "--spm-model-type bpe"
URL="${MULTI30K_URL:-https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw}"

for var in EPOCHS AVG VOCAB BEAM THREADS; do
    [[ "${!var}" =~ ^[1-9][0-9]*$ ]] || die "$var must be a positive integer, got '${!var}'"
done
[[ "$HOURS" =~ ^([0-9]+\.?[0-9]*|\.[0-9]+)$ && ! "$HOURS" =~ ^0*\.?0*$ ]] || die "HOURS must be a number > 0, got '$HOURS'"
for var in LENPEN WD; do
    [[ "${!var}" =~ ^[0-9]+\.?[0-9]*$ ]] || die "$var must be a number >= 0, got '${!var}'"
done
[[ "$SAMPLES" =~ ^[0-9]+$ ]] || die "SAMPLES must be an integer >= 0, got '$SAMPLES'"
[[ "$AMP" =~ ^(auto|none|bf16)$ ]] || die "AMP must be auto, none or bf16, got '$AMP'"
[[ "$TRIM" =~ ^[01]$ ]] || die "TRIM must be 0 or 1, got '$TRIM'"
TRIM_ARG=""; [[ "$TRIM" == 1 ]] && TRIM_ARG="--trim-target-vocab"
LOGITS=""
if [[ "$AMP" == auto ]]; then
    AMP=none
    if grep -qw amx_bf16 /proc/cpuinfo 2> /dev/null; then AMP=bf16
    elif grep -qw avx512_bf16 /proc/cpuinfo 2> /dev/null; then
        # Without AMX the products are the slow part, and the blockwise loss recomputes one in
        # backward: the whole logits train 13% faster there (docs/benchmarks.md).
        AMP=bf16; LOGITS=--full-logits
    fi
fi
# Few batch shapes keep oneDNN's bf16 kernels bounded; fp32 products generate none, so there the
# padding would only cost (0.86x the tokens/s; docs/benchmarks.md).
SHAPES=""; [[ "$AMP" == none ]] && SHAPES="--pad-to-multiple 1"
(( AVG <= EPOCHS )) || die "AVG=$AVG is more than EPOCHS=$EPOCHS epoch checkpoints"

RAW="$WORK/raw"; DATA="$WORK/data-bin"; CKPT="$WORK/ckpt"
mkdir -p "$RAW"
start=$(date +%s)

# ------------------------------------------------------------------ data
for lang in "$SRC" "$TGT"; do
    for split in train valid test2016; do
        [[ -s "$RAW/$split.$lang" ]] || multi30k_place "$split" "$lang"
    done
done

# ------------------------------------------------------------------ preprocess
if [[ ! -f "$DATA/meta.json" ]]; then
    echo "== preprocess -> $DATA"
    # shellcheck disable=SC2086  # PREPROCESS_ARGS is a list of flags
    $NMT preprocess --source-lang "$SRC" --target-lang "$TGT" \
        --trainpref "$RAW/train" --validpref "$RAW/valid" --testpref "$RAW/test2016" \
        --destdir "$DATA" --vocab-size "$VOCAB" --joined-dictionary $TRIM_ARG --subword-samples "$SAMPLES" --force $PREPROCESS_ARGS
fi

# ------------------------------------------------------------------ train
echo "== train transformer_multi30k for $HOURS h (at most $EPOCHS epochs, amp $AMP) -> $CKPT"
# shellcheck disable=SC2086  # TRAIN_ARGS is a list of flags; LOGITS and SHAPES are empty or flags
$NMT train "$DATA" --arch transformer_multi30k --share-all-embeddings --save-dir "$CKPT" \
    --max-tokens 4096 --dropout 0.2 --optimizer adamw --weight-decay "$WD" --lr 3e-3 --warmup-updates 1000 --label-smoothing 0.1 \
    --stop-time-hours "$HOURS" --max-epoch "$EPOCHS" --keep-last-epochs "$AVG" --eval-bleu --best-checkpoint-metric bleu \
    --save-init-checkpoint --threads "$THREADS" --amp "$AMP" $LOGITS $SHAPES --log-interval 100 $TRAIN_ARGS

# ------------------------------------------------------------------ average, translate, score
# How many: a fifth of the epochs trained (rounded), from 1 to AVG. The wall-time budget gives a
# slow host fewer epochs, and in a short run the older checkpoints are much weaker: after 24
# epochs of en->fr, averaging the last 10 gave 55.36 valid BLEU, the last 5 56.10 (the last 3-5
# were best); after 28 and 53 epochs of en->de the choice moved it by 0.3 and 0.5 at most.
epochs=$(find "$CKPT" -maxdepth 1 -name 'checkpoint*.pt' | sed -n 's|.*/checkpoint\([0-9][0-9]*\)\.pt$|\1|p' | sort -n | tail -1)
[[ -n "$epochs" ]] || die "no epoch checkpoint in $CKPT: training ended before its first epoch; raise HOURS"
navg=$(( (epochs + 2) / 5 )); (( navg >= 1 )) || navg=1; (( navg <= AVG )) || navg=$AVG
echo "== average the last $navg epoch checkpoints (of $epochs epochs) -> $CKPT/checkpoint_avg.pt"
$NMT average-checkpoints --inputs "$CKPT" --num-epoch-checkpoints "$navg" --output "$CKPT/checkpoint_avg.pt"

echo "== translate test2016 (beam $BEAM, lenpen $LENPEN) -> $WORK/test2016.hyp.$TGT"
$NMT generate --path "$CKPT/checkpoint_avg.pt" --input "$RAW/test2016.$SRC" --output "$WORK/test2016.hyp.$TGT" \
    --beam "$BEAM" --lenpen "$LENPEN" --threads "$THREADS"

echo "== score: BLEU lowercased, BLEU cased, chrF"
$NMT score --sys "$WORK/test2016.hyp.$TGT" --ref "$RAW/test2016.$TGT" --metrics bleu --lowercase | tee "$WORK/score.lc.txt"
$NMT score --sys "$WORK/test2016.hyp.$TGT" --ref "$RAW/test2016.$TGT" --metrics bleu,chrf | tee "$WORK/score.cased.txt"

echo "== attention heatmaps of test sentence 1 -> $WORK/attn"
$NMT visualize-attn --path "$CKPT/checkpoint_avg.pt" --compare "$CKPT/checkpoint_init.pt" \
    --input "$RAW/test2016.$SRC" --index 0 --out "$WORK/attn" --html

echo "== done in $(( ($(date +%s) - start) / 60 )) min $(( ($(date +%s) - start) % 60 )) s: $WORK/test2016.hyp.$TGT, $WORK/score.*.txt, $WORK/attn"
