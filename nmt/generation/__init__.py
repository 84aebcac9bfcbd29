"""Generation: translating (or continuing prompts) with trained checkpoints, and scoring the output.

decoding      what every search shares (ensemble step, length limits, log-prob rules, results)
sampling      greedy search and sampling
beam          beam search with tensor bookkeeping
forced        forced decoding: the log-probability models give a given translation
search        `translate_batch`, the one entry point that picks a search
generate      `nmt generate`: batches from a data split or raw text, in order, to a file or stdout
prompts       which kind of generation a checkpoint does; a language model's prompts
eval_lm       `nmt eval-lm`: a language model's loss and perplexity on a monolingual split
interactive   `nmt interactive`: stdin a buffer of lines at a time, each translation flushed when ready
output        output formats (plain, fairseq), progress and the summary
score         `nmt score`: sacreBLEU metrics and paired bootstrap
"""
