#!/usr/bin/env bash
# IWSLT'14 German->English (TED talks, ~160k training pairs), prepared as the common benchmark
# setup does, then transformer_iwslt_de_en (6+6 layers, D 512, FFN 1024, 4 heads):
#
#   bash recipes/iwslt14_de_en.sh                             # de -> en; downloads de-en.tgz
#   bash recipes/iwslt14_de_en.sh en de                       # the reverse direction, same data
#   NMT_DATA_DIR=path/to/dir bash recipes/iwslt14_de_en.sh    # offline: de-en.tgz, or its extracted files
#
# Steps: train = train.tags.de-en without metadata lines, valid = every 23rd line of it, test =
# dev2010, dev2012, tst2010-2012 (6,750 lines), all lowercased -> one joint SentencePiece model
# (VOCAB pieces; training pairs over 175 pieces or with a length ratio over 1.5 dropped) -> train
# EPOCHS epochs (AdamW, weight decay 1e-4, lr 5e-4, inverse_sqrt after 4000 warmup updates,
# dropout 0.3, label smoothing 0.1, decoder embeddings tied) -> average the last AVG epoch
# checkpoints -> beam BEAM on test -> sacreBLEU (BLEU, chrF).
#
# Needs: the network (or NMT_DATA_DIR) and perl; a GPU (on a CPU it would take days, by estimate);
# a few GB of disk, mostly checkpoints (estimated).
# Reaches: NOT RUN in this project; no number here was measured on its machines. Published reference,
# not directly comparable: Wu et al. (2019) report 34.4 BLEU for their Transformer baseline on this
# test set, tokenized BLEU after Moses + BPE; this recipe reports detokenized sacreBLEU.
#
# Everything goes under $WORK (default work/iwslt14-SRC-TGT). Overridable, with their defaults:
#   EPOCHS=50 AVG=5 VOCAB=10000 MAX_TOKENS=4096 BEAM=5 LENPEN=1.0 DEVICE=auto (cpu, cuda) THREADS=
#   GPUS=1 (more: torchrun, one process per GPU) WORKERS=1 NMT=nmt TORCHRUN=torchrun TRAIN_ARGS= IWSLT14_URL=
# A re-run skips the finished data steps and resumes training from $WORK/ckpt/checkpoint_last.pt.
set -euo pipefail

usage() { echo "usage: [NMT_DATA_DIR=DIR] bash recipes/iwslt14_de_en.sh [SRC TGT]   (de en, the default, or en de)" >&2; exit 2; }
# shellcheck source=recipes/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
case $# in
    0) SRC=de; TGT=en ;;
    2) SRC="$1"; TGT="$2" ;;
    *) usage ;;
esac
[[ "$SRC-$TGT" == de-en || "$SRC-$TGT" == en-de ]] || usage

WORK="${WORK:-work/iwslt14-$SRC-$TGT}"
EPOCHS="${EPOCHS:-50}"
AVG="${AVG:-5}"            # average the last AVG epoch checkpoints
VOCAB="${VOCAB:-10000}"
MAX_TOKENS="${MAX_TOKENS:-4096}"
BEAM="${BEAM:-5}"
LENPEN="${LENPEN:-1.0}"
DEVICE="${DEVICE:-auto}"
THREADS="${THREADS:-}"
GPUS="${GPUS:-1}"
WORKERS="${WORKERS:-1}"
NMT="${NMT:-nmt}"
TORCHRUN="${TORCHRUN:-torchrun}"
TRAIN_ARGS="${TRAIN_ARGS:-}"
URL="${IWSLT14_URL:-https://dl.fbaipublicfiles.com/fairseq/data/iwslt14/de-en.tgz}"

for var in EPOCHS AVG VOCAB MAX_TOKENS BEAM GPUS WORKERS; do
    [[ "${!var}" =~ ^[1-9][0-9]*$ ]] || die "$var must be a positive integer, got '${!var}'"
done
[[ -z "$THREADS" || "$THREADS" =~ ^[1-9][0-9]*$ ]] || die "THREADS must be a positive integer, got '$THREADS'"
[[ "$DEVICE" =~ ^(auto|cpu|cuda)$ ]] || die "DEVICE must be auto, cpu or cuda, got '$DEVICE'"
(( AVG <= EPOCHS )) || die "AVG=$AVG is more than EPOCHS=$EPOCHS epoch checkpoints"

ORIG="$WORK/orig"; RAW="$WORK/raw"; DATA="$WORK/data-bin"; CKPT="$WORK/ckpt"
mkdir -p "$ORIG" "$RAW"
start=$(date +%s)

# ------------------------------------------------------------------ data
TEST_SETS="IWSLT14.TED.dev2010 IWSLT14.TEDX.dev2012 IWSLT14.TED.tst2010 IWSLT14.TED.tst2011 IWSLT14.TED.tst2012"
ready=1
for f in train valid test; do for l in de en; do [[ -s "$RAW/$f.$l" ]] || ready=0; done; done

if (( ! ready )); then
    need perl
    # 1. the extracted archive: a local directory, a local de-en.tgz, or a download
    SRCDIR=""
    if [[ -n "${NMT_DATA_DIR:-}" ]]; then
        for d in "$NMT_DATA_DIR" "$NMT_DATA_DIR/de-en"; do [[ -f "$d/train.tags.de-en.de" ]] && { SRCDIR="$d"; break; }; done
        if [[ -z "$SRCDIR" ]]; then
            [[ -f "$NMT_DATA_DIR/de-en.tgz" ]] || die "$NMT_DATA_DIR holds neither de-en.tgz nor train.tags.de-en.de (the extracted archive)"
            TGZ="$NMT_DATA_DIR/de-en.tgz"
        fi
    else
        TGZ="$ORIG/de-en.tgz"
        [[ -s "$TGZ" || -d "$ORIG/de-en" ]] || fetch "$URL" "$TGZ" "set NMT_DATA_DIR to a directory holding de-en.tgz"
    fi
    if [[ -z "$SRCDIR" ]]; then
        SRCDIR="$ORIG/de-en"
        if [[ ! -d "$SRCDIR" ]]; then
            need tar
            rm -rf "$ORIG/.extract"; mkdir -p "$ORIG/.extract"
            reason=$(tar -xzf "$TGZ" -C "$ORIG/.extract" 2>&1) ||
                die "cannot extract $TGZ (${reason%%$'\n'*}); if it is a broken download, delete it and re-run"
            found=$(find "$ORIG/.extract" -name train.tags.de-en.de -print -quit)
            [[ -n "$found" ]] || die "$TGZ has no train.tags.de-en.de; it is not the IWSLT'14 de-en archive"
            mv "$(dirname "$found")" "$SRCDIR"; rm -rf "$ORIG/.extract"
        fi
    fi
    for l in de en; do
        [[ -r "$SRCDIR/train.tags.de-en.$l" ]] || die "$SRCDIR/train.tags.de-en.$l is missing or unreadable"
        for t in $TEST_SETS; do
            [[ -r "$SRCDIR/$t.de-en.$l.xml" ]] || die "$SRCDIR/$t.de-en.$l.xml is missing or unreadable"
        done
    done

    # 2. text: metadata lines out, tags stripped, lowercased; valid = every 23rd training line
    echo "== preparing train / valid / test -> $RAW"
    for l in de en; do
        perl -CSD -ne 'next if /^\s*<(?!title>|description>)/; s{</?(?:title|description)>}{}g;
                       s/^\s+|\s+$//g; print lc($_), "\n"' "$SRCDIR/train.tags.de-en.$l" |
            awk -v valid="$RAW/.valid.$l" -v train="$RAW/.train.$l" 'NR % 23 == 0 { print > valid; next } { print > train }'
        for t in $TEST_SETS; do
            perl -CSD -ne 'next unless /<seg\b/; chomp; s{^\s*<seg[^>]*>\s*}{}; s{\s*</seg>\s*$}{}; print lc($_), "\n"' "$SRCDIR/$t.de-en.$l.xml"
        done > "$RAW/.test.$l"
    done
    for f in train valid test; do
        de=$(wc -l < "$RAW/.$f.de"); en=$(wc -l < "$RAW/.$f.en")
        [[ "$de" -eq "$en" ]] || die "$f has $de German but $en English lines; the de-en files in $SRCDIR are not line-aligned"
    done
    got=$(wc -l < "$RAW/.test.de")
    [[ "$got" -eq 6750 ]] || die "the IWSLT'14 test set has 6750 lines, $SRCDIR/*.xml gave $got"
    for f in train valid test; do for l in de en; do mv "$RAW/.$f.$l" "$RAW/$f.$l"; done; done
fi
echo "== data: $(wc -l < "$RAW/train.de") train, $(wc -l < "$RAW/valid.de") valid, $(wc -l < "$RAW/test.de") test lines"

# ------------------------------------------------------------------ preprocess
if [[ ! -f "$DATA/meta.json" ]]; then
    echo "== preprocess -> $DATA"
    $NMT preprocess --source-lang "$SRC" --target-lang "$TGT" \
        --trainpref "$RAW/train" --validpref "$RAW/valid" --testpref "$RAW/test" \
        --destdir "$DATA" --vocab-size "$VOCAB" --joined-dictionary \
        --max-len 175 --max-len-ratio 1.5 --workers "$WORKERS" --force
fi

# ------------------------------------------------------------------ train
RUN_NMT="$NMT"   # several GPUs: one process per GPU under torchrun
if (( GPUS > 1 )); then need "${TORCHRUN%% *}"; RUN_NMT="$TORCHRUN --standalone --nproc_per_node $GPUS -m nmt"; fi
echo "== train transformer_iwslt_de_en, $EPOCHS epochs -> $CKPT"
# shellcheck disable=SC2086  # RUN_NMT is a command line, TRAIN_ARGS a list of flags
$RUN_NMT train "$DATA" --arch transformer_iwslt_de_en --share-decoder-input-output-embed --save-dir "$CKPT" \
    --optimizer adamw --adam-betas 0.9,0.98 --weight-decay 1e-4 --clip-norm 0 \
    --lr 5e-4 --lr-scheduler inverse_sqrt --warmup-updates 4000 --warmup-init-lr 1e-7 \
    --dropout 0.3 --criterion label_smoothed_cross_entropy --label-smoothing 0.1 \
    --max-tokens "$MAX_TOKENS" --max-epoch "$EPOCHS" --keep-last-epochs "$AVG" \
    --eval-bleu --best-checkpoint-metric bleu --device "$DEVICE" ${THREADS:+--threads "$THREADS"} \
    --log-interval 100 $TRAIN_ARGS

# ------------------------------------------------------------------ average, translate, score
echo "== average the last $AVG epoch checkpoints -> $CKPT/checkpoint_avg.pt"
$NMT average-checkpoints --inputs "$CKPT" --num-epoch-checkpoints "$AVG" --output "$CKPT/checkpoint_avg.pt"

echo "== translate test (beam $BEAM, lenpen $LENPEN) -> $WORK/test.hyp.$TGT"
$NMT generate --path "$CKPT/checkpoint_avg.pt" --input "$RAW/test.$SRC" --output "$WORK/test.hyp.$TGT" \
    --beam "$BEAM" --lenpen "$LENPEN" --device "$DEVICE"

echo "== score (sacreBLEU on lowercased text)"
$NMT score --sys "$WORK/test.hyp.$TGT" --ref "$RAW/test.$TGT" --metrics bleu,chrf | tee "$WORK/score.txt"

echo "== done in $(( ($(date +%s) - start) / 60 )) min: $WORK/test.hyp.$TGT, $WORK/score.txt"
