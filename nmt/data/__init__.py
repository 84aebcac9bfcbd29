"""Data: raw text -> SentencePiece pieces -> memory-mapped token arrays -> token-budget batches.

tokenizer     SentencePiece (and whitespace) tokenizers, the special ids, loading from blobs
preprocess    `nmt preprocess`: checks, tokenizer training, binarizing every split, meta.json
rawtext       raw text checked and read in chunks of lines, both sides of a pair in step
parallel      `ordered_map`: work items in worker processes, results in input order
train_tokenizer  the tokenizer(s) learned from the training split
spm_sample    the training lines SentencePiece learns from (a seeded sample of a large corpus)
binarize      streaming text -> `.bin`/`.idx` token arrays (workers optional, order kept)
subword_samples  copies of the training split with sampled segmentations (`--subword-samples`)
target_vocab  the trimmed target vocabulary (`--trim-target-vocab`)
dataset       memmap token arrays, token-budget batches, sharding, collate into a `Batch`
toy           the built-in English->French toy corpus, written from a template grammar
toy_ko        the English<->Korean toy grammar (particles by batchim, counters, polite verbs)
toy_data      `nmt toy-data`: the toy corpora by language pair
"""
