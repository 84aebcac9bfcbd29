#!/usr/bin/env bash
# A GPT-style and a BERT-style model on the English side of Multi30k, in one command:
#
#   NMT_DATA_DIR=path/to/multi30k bash recipes/language_model.sh   # a local copy, offline
#   bash recipes/language_model.sh                                 # downloads the public release
#
# Steps: check the data (29,000 / 1,014 / 1,000 English captions) -> preprocess one language
# (--only-source: a unigram SentencePiece model of VOCAB pieces, with <mask>) -> train
# transformer_lm_tiny (a causal decoder: 2 layers, D 128) on blocks of 128 tokens across
# sentences, and mlm_tiny (a bidirectional encoder with a masked-LM head) on sentences with 15% of
# the pieces chosen, EPOCHS epochs each -> the language model's test2016 perplexity (eval-lm) ->
# continuations of a few prompts: greedy, top-p sampling, and long ones where greedy repeats
# itself -> fill-mask on a few sentences -> self-attention heatmaps of both, trained against
# initial weights. Prompts and masked sentences are the recipe's own, not corpus sentences.
#
# Needs: the corpus (NMT_DATA_DIR: train, valid, test2016 .en, raw text; or the network), 2 CPU
# cores (no GPU), about 2 GB of memory and 0.1 GB of disk; under 30 minutes in all.
# Reaches: see docs/language-models.md (its outputs are this recipe's).
#
# Everything goes under $WORK (default work/lm-en). Overridable, with their defaults:
#   EPOCHS=20 VOCAB=5000 THREADS=2 NMT=nmt MULTI30K_URL=
# A re-run resumes training from each checkpoint_last.pt and redoes the later steps.
set -euo pipefail

# shellcheck source=recipes/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[[ $# -eq 0 ]] || { echo "usage: [NMT_DATA_DIR=DIR] bash recipes/language_model.sh" >&2; exit 2; }

WORK="${WORK:-work/lm-en}"
EPOCHS="${EPOCHS:-20}"
VOCAB="${VOCAB:-5000}"
THREADS="${THREADS:-2}"
NMT="${NMT:-nmt}"
URL="${MULTI30K_URL:-https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw}"
for var in EPOCHS VOCAB THREADS; do
    [[ "${!var}" =~ ^[1-9][0-9]*$ ]] || die "$var must be a positive integer, got '${!var}'"
done

RAW="$WORK/raw"; DATA="$WORK/data-bin"; LM="$WORK/ckpt-lm"; MLM="$WORK/ckpt-mlm"; OUT="$WORK/out"
mkdir -p "$RAW" "$OUT"
start=$(date +%s)

# ------------------------------------------------------------------ data
for split in train valid test2016; do
    [[ -s "$RAW/$split.en" ]] || multi30k_place "$split" en
done

# ------------------------------------------------------------------ preprocess
if [[ ! -f "$DATA/meta.json" ]]; then
    echo "== preprocess (one language) -> $DATA"
    $NMT preprocess --only-source --source-lang en --trainpref "$RAW/train" --validpref "$RAW/valid" \
        --testpref "$RAW/test2016" --destdir "$DATA" --vocab-size "$VOCAB" --force
fi

# ------------------------------------------------------------------ train both
# The same settings for both: blocks of 128 tokens, plain cross-entropy (label smoothing would
# raise the perplexity it is judged by), and checkpoint_init.pt for the before/after heatmaps.
for task in language_modeling masked_lm; do
    if [[ "$task" == language_modeling ]]; then arch=transformer_lm_tiny; ckpt="$LM"; else arch=mlm_tiny; ckpt="$MLM"; fi
    echo "== train $arch (--task $task) for $EPOCHS epochs -> $ckpt"
    $NMT train "$DATA" --task "$task" --arch "$arch" --save-dir "$ckpt" --tokens-per-sample 128 \
        --max-tokens 4096 --dropout 0.1 --lr 2e-3 --warmup-updates 500 --clip-norm 1.0 --label-smoothing 0 \
        --max-epoch "$EPOCHS" --keep-last-epochs 1 --save-init-checkpoint --threads "$THREADS" --log-interval 100 \
        2>&1 | tee -a "$WORK/train.$task.log"
done

# ------------------------------------------------------------------ language model: perplexity, continuations
echo "== test2016 perplexity of the language model: blocks of 128 tokens, then with 64 tokens of context"
{
    $NMT eval-lm "$DATA" --path "$LM/checkpoint_best.pt" --gen-subset test --tokens-per-sample 128
    $NMT eval-lm "$DATA" --path "$LM/checkpoint_best.pt" --gen-subset test --tokens-per-sample 64 --context-window 64
    echo "before training:"
    $NMT eval-lm "$DATA" --path "$LM/checkpoint_init.pt" --gen-subset test --tokens-per-sample 128
} | tee "$OUT/eval-lm.txt"

# Prompts and masked sentences written for this recipe (none of them is a Multi30k caption).
cat > "$OUT/prompts.txt" << 'TEXT'
A man in a blue jacket
Two children are
A woman with a red umbrella
The dog
Three people sit
TEXT
cat > "$OUT/masked.txt" << 'TEXT'
A man is riding a <mask> down the street.
Two <mask> are playing in the snow.
A woman in a red <mask> is holding an umbrella.
The children are <mask> in the park.
A dog jumps into the <mask>.
An old man with a gray <mask> is reading a newspaper on a <mask>.
TEXT

continue_prompts() {  # continue_prompts NAME COPIES FLAGS...: "prompt continuation" lines -> $OUT/NAME.txt
    local name=$1 copies=$2 i; shift 2
    $NMT generate --path "$LM/checkpoint_best.pt" --input "$OUT/prompts.txt" --output "$OUT/$name.hyp" \
        --threads "$THREADS" "$@" 2> /dev/null
    # with --nbest K the K continuations of a prompt are K lines in a row: repeat each prompt K times
    while IFS= read -r line; do for (( i = 0; i < copies; i++ )); do echo "$line"; done; done < "$OUT/prompts.txt" \
        | paste -d ' ' - "$OUT/$name.hyp" | tee "$OUT/$name.txt"
}
echo "== greedy continuations"
continue_prompts greedy 1 --beam 1
echo "== top-p sampling (p 0.9), 3 samples per prompt"
continue_prompts topp 3 --beam 3 --nbest 3 --sampling --sampling-topp 0.9 --seed 1
echo "== no end before 40 tokens: greedy, then greedy that never repeats a 3-gram"
continue_prompts long-greedy 1 --beam 1 --min-len 40
continue_prompts long-norepeat 1 --beam 1 --min-len 40 --no-repeat-ngram-size 3

# ------------------------------------------------------------------ masked LM: fill-mask
echo "== masked LM: its last validation"
grep "valid on 'valid' subset" "$WORK/train.masked_lm.log" | tail -1 | tee "$OUT/mlm-valid.txt" \
    || echo "(no validation line in $WORK/train.masked_lm.log)"
echo "== fill-mask, 3 fillers per mask"
$NMT fill-mask --path "$MLM/checkpoint_best.pt" --input "$OUT/masked.txt" --topk 3 | tee "$OUT/fill-mask.txt"

# ------------------------------------------------------------------ heatmaps, trained against initial weights
echo "== self-attention heatmaps -> $WORK/attn-lm, $WORK/attn-mlm"
$NMT visualize-attn --path "$LM/checkpoint_best.pt" --compare "$LM/checkpoint_init.pt" \
    --source "A man in a blue jacket is sitting on a bench." --out "$WORK/attn-lm" --html > "$OUT/attn-lm.txt"
$NMT visualize-attn --path "$MLM/checkpoint_best.pt" --compare "$MLM/checkpoint_init.pt" \
    --source "A man is riding a <mask> down the street." --out "$WORK/attn-mlm" --html > "$OUT/attn-mlm.txt"
tail -n 5 "$OUT/attn-lm.txt" "$OUT/attn-mlm.txt"

echo "== done in $(( ($(date +%s) - start) / 60 )) min $(( ($(date +%s) - start) % 60 )) s: $OUT, $WORK/attn-lm, $WORK/attn-mlm"
