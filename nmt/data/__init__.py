"""Data: raw text -> SentencePiece pieces -> memory-mapped token arrays -> token-budget batches.

tokenizer     SentencePiece (and whitespace) tokenizers, the special ids, loading from blobs
preprocess    `nmt preprocess`: checks, tokenizer training, binarizing every split, meta.json
binarize      streaming text -> `.bin`/`.idx` token arrays (workers optional, order kept)
target_vocab  the trimmed target vocabulary (`--trim-target-vocab`)
dataset       memmap token arrays, token-budget batches, sharding, collate into a `Batch`
toy           the built-in toy corpus (`nmt toy-data`), written from a template grammar
"""
