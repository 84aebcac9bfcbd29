#!/usr/bin/env bash
# WMT'14 English->German (~4.5M pairs) with transformer_big (default) or transformer_base, on GPUs:
#
#   bash recipes/wmt14_en_de.sh                                          # one machine, all its GPUs
#   ARCH=transformer_base GPUS=4 AMP=bf16 bash recipes/wmt14_en_de.sh    # PREPARE_ONLY=1: the data only
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=host0 bash recipes/wmt14_en_de.sh   # on host0; NODE_RANK=1 on the other
#
# Steps: Europarl v7 + Common Crawl + News Commentary v9; valid newstest2013, test newstest2014 (full,
# 3003 lines, from sacreBLEU or the archives) -> one joint SentencePiece model (32,000 pieces; pairs
# over 250 pieces or with a length ratio over 1.5 dropped) -> train under torchrun (Vaswani et al. 2017,
# Ott et al. 2018: shared embeddings, inverse_sqrt after 4000 warmup updates, label smoothing 0.1,
# AMP fp16, MAX_TOKENS per GPU; UPDATE_FREQ makes an update 128 GPU-batches for big, 8 for base;
# big / base: lr 1e-3 / 7e-4, dropout 0.3 / 0.1, 30k (this recipe's choice) / 100k updates) ->
# average the last AVG checkpoints -> beam 4, length penalty 0.6 -> cased sacreBLEU (13a) and chrF.
#
# Needs: GPUs, the network (~1.5 GB of downloads; or NMT_DATA_DIR holding the five archives),
# ~10 GB of disk for data, ~2.5 GB per big checkpoint with AVG + 3 kept (estimates).
# Reaches: NOT RUN in this project; no number here was measured on its machines.
# Published references (their authors', tokenized BLEU unless noted): Vaswani et al. base 27.3,
# big 28.4; Ott et al. big 29.3 after 85 min on 128 V100 (28.6 as detokenized sacreBLEU).
#
# Everything goes under $WORK (default work/wmt14-en-de-ARCH). Overridable: ARCH AMP GPUS NNODES NODE_RANK
#   MASTER_ADDR MASTER_PORT=29500 MAX_TOKENS=3584 UPDATE_FREQ LR DROPOUT MAX_UPDATE SAVE_INTERVAL AVG VOCAB=32000
#   SPM_SAMPLE=2000000 WORKERS BEAM=4 LENPEN=0.6 NMT TORCHRUN SACREBLEU TRAIN_ARGS PREPARE_ONLY WMT14_*_URL
# A re-run skips the finished data steps and resumes training from $WORK/ckpt/checkpoint_last.pt.
set -euo pipefail

usage() { echo "usage: [ARCH=transformer_big|transformer_base] [GPUS=N] [NNODES=N NODE_RANK=R MASTER_ADDR=HOST] bash recipes/wmt14_en_de.sh" >&2; exit 2; }
# shellcheck source=recipes/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[[ $# -eq 0 ]] || usage

ARCH="${ARCH:-transformer_big}"
case "$ARCH" in
    transformer_big)  D_LR=1e-3; D_DROPOUT=0.3; D_MAX_UPDATE=30000;  D_SAVE=500;  D_AVG=10; BATCHES=128 ;;
    transformer_base) D_LR=7e-4; D_DROPOUT=0.1; D_MAX_UPDATE=100000; D_SAVE=1500; D_AVG=5;  BATCHES=8 ;;
    *) die "ARCH must be transformer_big or transformer_base, got '$ARCH'" ;;
esac
LR="${LR:-$D_LR}"; DROPOUT="${DROPOUT:-$D_DROPOUT}"; MAX_UPDATE="${MAX_UPDATE:-$D_MAX_UPDATE}"
SAVE_INTERVAL="${SAVE_INTERVAL:-$D_SAVE}"; AVG="${AVG:-$D_AVG}"
WORK="${WORK:-work/wmt14-en-de-$ARCH}"
AMP="${AMP:-fp16}"
GPUS="${GPUS:-}"
NNODES="${NNODES:-1}"; NODE_RANK="${NODE_RANK:-0}"; MASTER_ADDR="${MASTER_ADDR:-}"; MASTER_PORT="${MASTER_PORT:-29500}"
MAX_TOKENS="${MAX_TOKENS:-3584}"
UPDATE_FREQ="${UPDATE_FREQ:-}"
VOCAB="${VOCAB:-32000}"
SPM_SAMPLE="${SPM_SAMPLE:-2000000}"   # lines SentencePiece learns from (a seeded sample)
WORKERS="${WORKERS:-$(nproc 2>/dev/null || echo 1)}"
BEAM="${BEAM:-4}"; LENPEN="${LENPEN:-0.6}"
NMT="${NMT:-nmt}"; TORCHRUN="${TORCHRUN:-torchrun}"; SACREBLEU="${SACREBLEU-sacrebleu}"
TRAIN_ARGS="${TRAIN_ARGS:-}"; PREPARE_ONLY="${PREPARE_ONLY:-}"
URLS=("${WMT14_EUROPARL_URL:-https://statmt.org/wmt13/training-parallel-europarl-v7.tgz}"
      "${WMT14_COMMONCRAWL_URL:-https://statmt.org/wmt13/training-parallel-commoncrawl.tgz}"
      "${WMT14_NEWS_COMMENTARY_URL:-https://statmt.org/wmt14/training-parallel-nc-v9.tgz}")
STEMS=(europarl-v7.de-en commoncrawl.de-en news-commentary-v9.de-en)   # file names inside them
DEV_URL="${WMT14_DEV_URL:-https://statmt.org/wmt14/dev.tgz}"
TEST_URL="${WMT14_TEST_URL:-https://statmt.org/wmt14/test-full.tgz}"

[[ "$AMP" =~ ^(fp16|bf16)$ ]] || die "AMP must be fp16 or bf16, got '$AMP'"
for var in NNODES MAX_TOKENS MAX_UPDATE SAVE_INTERVAL AVG VOCAB SPM_SAMPLE WORKERS BEAM MASTER_PORT; do
    [[ "${!var}" =~ ^[1-9][0-9]*$ ]] || die "$var must be a positive integer, got '${!var}'"
done
for var in GPUS UPDATE_FREQ; do
    [[ -z "${!var}" || "${!var}" =~ ^[1-9][0-9]*$ ]] || die "$var must be a positive integer, got '${!var}'"
done
[[ "$NODE_RANK" =~ ^[0-9]+$ ]] && (( NODE_RANK < NNODES )) || die "NODE_RANK must be in 0..$((NNODES - 1)), got '$NODE_RANK'"
(( NNODES == 1 )) || [[ -n "$MASTER_ADDR" ]] || die "NNODES=$NNODES needs MASTER_ADDR, the host name of the NODE_RANK=0 machine"

ORIG="$WORK/orig"; RAW="$WORK/raw"; DATA="$WORK/data-bin"; CKPT="$WORK/ckpt"
mkdir -p "$ORIG" "$RAW"
start=$(date +%s)

get_archive() {  # get_archive URL: sets ARCHIVE to NMT_DATA_DIR/NAME, or to ORIG/NAME (downloaded)
    local name="${1##*/}"
    if [[ -n "${NMT_DATA_DIR:-}" ]]; then
        ARCHIVE="$NMT_DATA_DIR/$name"
        [[ -r "$ARCHIVE" ]] || die "$ARCHIVE is missing or unreadable (NMT_DATA_DIR must hold every archive)"
    else
        ARCHIVE="$ORIG/$name"
        [[ -s "$ARCHIVE" ]] || fetch "$1" "$ARCHIVE" "set NMT_DATA_DIR to a directory holding the archives"
    fi
}

extract() {  # extract ARCHIVE NAME...: the members called NAME (in any folder of it) into ORIG
    local archive="$1" reason m; shift
    need tar
    rm -rf "$ORIG/.extract"; mkdir -p "$ORIG/.extract"
    reason=$(tar -xzf "$archive" -C "$ORIG/.extract" --wildcards "${@/#/*}" 2>&1) ||
        die "cannot extract $* from $archive (${reason%%$'\n'*}); if it is a broken download, delete it and re-run"
    for m; do mv "$(find "$ORIG/.extract" -name "$m" -type f -print -quit)" "$ORIG/$m"; done
    rm -rf "$ORIG/.extract"
}

same_lines() {  # same_lines A B [N]: A and B have the same number of lines (and N, when given)
    local a b; a=$(wc -l < "$1"); b=$(wc -l < "$2")
    [[ "$a" -eq "$b" ]] || die "$1 has $a lines but $2 has $b; they must be line-aligned"
    [[ -z "${3:-}" || "$a" -eq "$3" ]] || die "$1 has $a lines, expected $3"
}

sb_echo() {  # sb_echo TESTSET FIELD DEST: one side of a sacreBLEU test set (it downloads it once)
    local reason
    if ! reason=$("$SACREBLEU" -t "$1" -l en-de --echo "$2" 2>&1 >"$3.part"); then
        rm -f "$3.part"
        die "sacrebleu cannot fetch $1 en-de (${reason##*$'\n'}); set SACREBLEU= to download the archives instead"
    fi
    mv "$3.part" "$3"
}

sgm_text() { perl -ne 'next unless /<seg\b/; chomp; s{^\s*<seg[^>]*>\s*}{}; s{\s*</seg>\s*$}{}; print "$_\n"' "$1"; }

# ------------------------------------------------------------------ data (node 0 only)
ready=1
for f in train valid test; do for l in en de; do [[ -s "$RAW/$f.$l" ]] || ready=0; done; done
if (( NODE_RANK > 0 )); then
    [[ -f "$DATA/meta.json" ]] || die "$DATA/meta.json not found: prepare the data first (PREPARE_ONLY=1 on one machine) where every node can read it"
elif (( ! ready )); then
    need perl
    todo=()   # corpora not extracted yet: download them all first, then extract
    for i in 0 1 2; do [[ -s "$ORIG/${STEMS[$i]}.en" && -s "$ORIG/${STEMS[$i]}.de" ]] || todo+=("$i"); done
    for i in ${todo[@]+"${todo[@]}"}; do get_archive "${URLS[$i]}"; done
    for i in ${todo[@]+"${todo[@]}"}; do
        get_archive "${URLS[$i]}"; echo "== extracting ${STEMS[$i]} from $ARCHIVE"
        extract "$ARCHIVE" "${STEMS[$i]}.en" "${STEMS[$i]}.de"
    done
    for s in "${STEMS[@]}"; do same_lines "$ORIG/$s.en" "$ORIG/$s.de"; done
    for l in en de; do for s in "${STEMS[@]}"; do cat "$ORIG/$s.$l"; done > "$RAW/.train.$l"; done

    if [[ -z "${NMT_DATA_DIR:-}" && -n "$SACREBLEU" ]] && command -v "$SACREBLEU" >/dev/null 2>&1; then
        echo "== newstest2013 and newstest2014 from $SACREBLEU"
        sb_echo wmt13 src "$RAW/.valid.en"; sb_echo wmt13 ref "$RAW/.valid.de"
        sb_echo wmt14/full src "$RAW/.test.en"; sb_echo wmt14/full ref "$RAW/.test.de"
    else
        get_archive "$DEV_URL"; extract "$ARCHIVE" newstest2013.en newstest2013.de
        get_archive "$TEST_URL"; extract "$ARCHIVE" newstest2014-deen-src.en.sgm newstest2014-deen-ref.de.sgm
        cp "$ORIG/newstest2013.en" "$RAW/.valid.en"; cp "$ORIG/newstest2013.de" "$RAW/.valid.de"
        sgm_text "$ORIG/newstest2014-deen-src.en.sgm" > "$RAW/.test.en"
        sgm_text "$ORIG/newstest2014-deen-ref.de.sgm" > "$RAW/.test.de"
    fi
    same_lines "$RAW/.train.en" "$RAW/.train.de"
    same_lines "$RAW/.valid.en" "$RAW/.valid.de" 3000
    same_lines "$RAW/.test.en" "$RAW/.test.de" 3003
    for f in train valid test; do for l in en de; do mv "$RAW/.$f.$l" "$RAW/$f.$l"; done; done
fi
if (( NODE_RANK == 0 )); then
    echo "== data: $(wc -l < "$RAW/train.en") train, $(wc -l < "$RAW/valid.en") valid, $(wc -l < "$RAW/test.en") test lines"
fi

# ------------------------------------------------------------------ preprocess (node 0 only)
if [[ ! -f "$DATA/meta.json" ]]; then
    echo "== preprocess -> $DATA"
    $NMT preprocess --source-lang en --target-lang de \
        --trainpref "$RAW/train" --validpref "$RAW/valid" --testpref "$RAW/test" \
        --destdir "$DATA" --vocab-size "$VOCAB" --joined-dictionary --input-sentence-size "$SPM_SAMPLE" \
        --max-len 250 --max-len-ratio 1.5 --workers "$WORKERS" --force
fi
[[ -z "$PREPARE_ONLY" ]] || { echo "== data ready in $DATA (PREPARE_ONLY)"; exit 0; }

# ------------------------------------------------------------------ train
if [[ -z "$GPUS" ]]; then
    GPUS=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)
    (( GPUS > 0 )) || die "no GPU found (nvidia-smi lists none); this recipe trains on GPUs: set GPUS=N"
fi
WORLD=$(( NNODES * GPUS ))
UPDATE_FREQ="${UPDATE_FREQ:-$(( (BATCHES + WORLD - 1) / WORLD ))}"
if (( NNODES == 1 )); then
    RDZV="--standalone"
else
    RDZV="--nnodes $NNODES --node_rank $NODE_RANK --rdzv_endpoint $MASTER_ADDR:$MASTER_PORT"
fi
need "${TORCHRUN%% *}"
echo "== train $ARCH on $NNODES x $GPUS GPUs, update-freq $UPDATE_FREQ ($(( WORLD * UPDATE_FREQ )) GPU-batches of $MAX_TOKENS tokens), lr $LR, $MAX_UPDATE updates -> $CKPT"
# shellcheck disable=SC2086  # TORCHRUN and RDZV are command-line words, TRAIN_ARGS a list of flags
$TORCHRUN $RDZV --nproc_per_node "$GPUS" -m nmt train "$DATA" --arch "$ARCH" --share-all-embeddings \
    --save-dir "$CKPT" --optimizer adam --adam-betas 0.9,0.98 --clip-norm 0 --weight-decay 0 \
    --lr "$LR" --lr-scheduler inverse_sqrt --warmup-updates 4000 --warmup-init-lr 1e-7 \
    --dropout "$DROPOUT" --criterion label_smoothed_cross_entropy --label-smoothing 0.1 \
    --max-tokens "$MAX_TOKENS" --update-freq "$UPDATE_FREQ" --amp "$AMP" --device cuda \
    --max-update "$MAX_UPDATE" --save-interval-updates "$SAVE_INTERVAL" --keep-interval-updates "$AVG" \
    --keep-last-epochs 1 --log-interval 100 $TRAIN_ARGS
if (( NODE_RANK > 0 )); then echo "== node $NODE_RANK done (node 0 writes checkpoints and evaluates)"; exit 0; fi

# ------------------------------------------------------------------ average, translate, score
echo "== average the last $AVG update checkpoints -> $CKPT/checkpoint_avg.pt"
$NMT average-checkpoints --inputs "$CKPT" --num-update-checkpoints "$AVG" --output "$CKPT/checkpoint_avg.pt"

echo "== translate newstest2014 (beam $BEAM, lenpen $LENPEN) -> $WORK/newstest2014.hyp.de"
$NMT generate --path "$CKPT/checkpoint_avg.pt" --input "$RAW/test.en" --output "$WORK/newstest2014.hyp.de" \
    --beam "$BEAM" --lenpen "$LENPEN" --max-len-a 1 --max-len-b 50

echo "== score: cased sacreBLEU, chrF"
$NMT score --sys "$WORK/newstest2014.hyp.de" --ref "$RAW/test.de" --metrics bleu,chrf | tee "$WORK/score.txt"

echo "== done in $(( ($(date +%s) - start) / 60 )) min: $WORK/newstest2014.hyp.de, $WORK/score.txt"
