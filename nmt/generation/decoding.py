"""What every search shares: the ensemble step, length limits, log-prob adjustments, results.

The searches themselves: nmt.generation.sampling (greedy and sampling), nmt.generation.beam;
nmt.generation.search picks one.

Shape legend: B sentences, K beam (or samples per sentence), N live rows (sentences x K),
S source length, V target vocabulary, L hypothesis length (tokens incl. the final EOS).

Every search encodes once per model, then decodes one token per step from the cached decoder
state (`decode(last_tokens (N, 1), memory, src_pad_mask, state)`), one batched call for all live
rows of all sentences. Rows of finished sentences are dropped with `select_batch` on memory,
state and `src_pad_mask`, so late steps only pay for the sentences still running.

Per-step log-probabilities (`step_lprobs`): log_softmax(logits / temperature) in float32; an
ensemble averages probabilities, i.e. logsumexp over models - log(n). Then, in this order:
PAD and BOS get -inf (never generated); UNK loses `unkpen`; EOS gets -inf while fewer than
`min_len` tokens were produced; `no_repeat_ngram_size` n forbids any token that would repeat an
n-gram already in the prefix; at the sentence's maximum length every token but EOS gets -inf
and EOS keeps its own log-prob (the maximum length wins over min_len).

Maximum length, per sentence: max_len = min(int(max_len_a * src_len + max_len_b),
min over models of max target positions - 1), with src_len the sentence's own non-pad source
length (pieces + EOS), so a sentence translates the same alone or in any batch. A hypothesis
holds at most max_len tokens before its EOS.

Forced prefix (fairseq's prefix_tokens; a language model's prompt): `prefix` (B, P) right-padded
with PAD gives each sentence P_b tokens that its first P_b steps produce, whatever the models
prefer: at such a step every token but the prefix's gets -inf and the prefix's token gets 0, so
the prefix adds nothing to scores. The first decode call feeds BOS and the m = min_b P_b tokens
that every sentence of the batch is forced to at once (the whole prefix when all have the same
length); a longer prefix goes on one forced token per step, aligned left: every row's tokens sit
at the positions they have alone, no padding enters the decoder, and a sentence gets the same
result in any batch. The result holds the tokens after the prefix only: max_len, --min-len,
positional scores, scores and their length count the tokens after the prefix (EOS included);
max_len is also capped so that prefix + tokens fit the target positions. Without a prefix every
rule above is unchanged.

Scores: a hypothesis' `positional_scores` are its per-token log-probs (after the adjustments
above); `score` = sum / L**lenpen with L counting EOS (fairseq's normalisation).

Beam search (nmt.generation.beam), per step: every live beam's cumulative score plus its step log-probs
gives K*V candidates per sentence; the best 2K are taken. EOS candidates ranked within the
best K finish (up to K finished hypotheses per sentence, best first); the best K non-EOS
candidates continue. A sentence stops at the first of:
  1. it has K finished hypotheses (fairseq's rule);
  2. (when unkpen >= 0, so every step log-prob is <= 0) its nbest-th best finished score is
     >= an upper bound on the final score of every live beam. A live beam with cumulative score
     s <= 0 after t tokens can only end with a score s' <= s and length L in
     [t + 1, max_len + 1], so its final score is at most max(s / (t+1)**lenpen,
     s / (max_len+1)**lenpen). Once no live beam can beat the nbest-th finished hypothesis,
     continuing could only add hypotheses ranked below it: the result is unchanged by rule 2,
     which only saves steps (without a length penalty it is "the best finished score cannot be
     beaten by any live hypothesis");
  3. it reaches its maximum length (every live beam is forced to EOS and finishes).
The result is its finished hypotheses sorted by score, the best `nbest` of them.

Greedy search (beam 1, no sampling) has its own loop without candidate bookkeeping and gives
exactly the hypotheses of beam search with beam 1. Sampling draws K independent samples per
sentence (K = beam): each row samples from its own distribution, restricted to the top-k
tokens and/or the smallest set of tokens whose probability reaches top-p, using a
torch.Generator seeded with `cfg.seed` (reproducible for the same input, batching and device);
scores are the model's log-probs of the drawn tokens; the `nbest` best samples are returned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

import torch
from torch import Tensor, nn

from nmt.config import GenerateConfig
from nmt.models import select_batch

PAD, UNK, BOS, EOS = 0, 1, 2, 3  # fixed ids, as in nmt.data.tokenizer


@dataclass
class Hypothesis:
    """One translation: tokens (L,) ending with EOS (no BOS), score (length-normalised log-prob),
    positional_scores (L,) per-token log-probs, attn (L, S_real) last-layer cross-attention averaged
    over heads (and models), restricted to the sentence's non-pad source positions, or None."""

    tokens: Tensor
    score: float
    positional_scores: Tensor
    attn: Optional[Tensor] = None


class Ensemble:
    """The decoding side of one or more models for one search: memories, states, masks.

    Rows are (sentence, beam) pairs, sentence-major. `select` reorders rows for the decoder
    states (beam reordering) and drops finished sentences. State tensors created by the first
    decode call and handed back unchanged (the same tensor object) ever since, such as the
    cross-attention K/V, were computed when every beam of a sentence was identical, so their
    rows are identical within a sentence: beam reordering leaves them alone and they are only
    selected when sentences are dropped. (This relies on the protocol's rule that a state is a
    value: models never modify a state tensor in place.)
    """

    def __init__(
        self, models: list[nn.Module], src: Tensor, src_pad_mask: Tensor, temperature: float, grouped: bool = False
    ):
        """grouped: the caller keeps K rows for every live sentence (beam search), so memory, mask and
        static tensors may stay one row per sentence when every model decodes grouped (see `first_step`)."""
        self.models = models
        self.temperature = temperature
        self.memories = [model.encode(src, src_pad_mask)[0] for model in models]  # one row per sentence
        self.src_pad_mask = src_pad_mask  # (B, S); (B*K, S) after first_step unless grouped
        self.states: list = [None] * len(models)
        self.static: list[list[Tensor]] = [[] for _ in models]  # held, so their ids stay unique
        self.log_n = math.log(len(models))
        self.grouped = grouped and all(getattr(m, "decodes_grouped", False) for m in models)
        self.k = 1  # rows per sentence after first_step

    def step(self, tgt_in: Tensor, need_attn: bool) -> tuple[Tensor, Optional[Tensor]]:
        """tgt_in (N, 1) -> log-probs (N, V) float32 and head-averaged cross-attention (N, S) or None.

        On the first call tgt_in is BOS (the whole prefix); afterwards the last token only."""
        lprobs, attns = [], []
        for m, model in enumerate(self.models):
            first = self.states[m] is None
            logits, self.states[m], attn = model.decode(
                tgt_in, self.memories[m], self.src_pad_mask, self.states[m], need_attn=need_attn
            )
            kept = {id(t) for t in self.static[m]}
            self.static[m] = [t for t in _leaves(self.states[m]) if first or id(t) in kept]
            logits = logits[:, -1].float()  # (N, V)
            if self.temperature != 1.0:
                logits = logits / self.temperature
            lprobs.append(torch.log_softmax(logits, dim=-1))
            if need_attn and attn is not None and attn.get("cross"):
                attns.append(attn["cross"][-1][:, :, -1].float().mean(dim=1))  # (N, H, S) -> (N, S)
        if len(lprobs) == 1:
            lp = lprobs[0]
        else:
            lp = torch.logsumexp(torch.stack(lprobs), dim=0) - self.log_n  # (N, V)
        at = torch.stack(attns).mean(dim=0) if attns else None
        return lp, at

    def first_step(self, k: int, need_attn: bool, head: Optional[Tensor] = None) -> tuple[Tensor, Optional[Tensor]]:
        """The first step (BOS, then head (B, m) when given: prefix tokens every sentence is forced to)
        on one row per sentence, then every row repeated k times (sentence-major): all k beams or
        samples of a sentence start identical. Returns log-probs (B*k, V) and attention (B*k, S) or
        None, as `step`, for the position after the last token fed.

        Grouped (see __init__), memory, mask and static state tensors keep one row per sentence
        and the models decode the K rows of each sentence against it: nothing is copied K times."""
        bsz = self.src_pad_mask.size(0)
        bos = torch.full((bsz, 1), BOS, dtype=torch.long, device=self.src_pad_mask.device)
        if head is not None and head.size(1):
            bos = torch.cat([bos, head], dim=1)  # (B, 1 + m): one decode call for the common prefix
        lprobs, attn = self.step(bos, need_attn)
        self.k = k
        if k == 1:
            return lprobs, attn
        expand = torch.arange(bsz, device=bos.device).repeat_interleave(k)  # (B*k,)
        if self.grouped:  # only the per-sentence tensors the families name stay one row per sentence
            self.static = [_leaves(self.states[m], model.sentence_state_keys) for m, model in enumerate(self.models)]
        self.select(expand, None if self.grouped else expand)
        return lprobs.index_select(0, expand), (attn.index_select(0, expand) if attn is not None else None)

    def sentence_rows(self, keep: Tensor) -> Tensor:
        """keep (Bl',): the live sentences that go on -> the `shrink` index of `select`: keep itself
        when grouped (one memory row per sentence), else the K rows of each kept sentence."""
        if self.grouped or self.k == 1:
            return keep
        return (keep[:, None] * self.k + torch.arange(self.k, device=keep.device)).view(-1)

    def select(self, rows: Tensor, shrink: Optional[Tensor] = None) -> None:
        """rows (N',): new row -> old row for the decoder states; shrink or None: the rows of memory,
        mask and static state tensors to keep (whole sentences: `sentence_rows`), when sentences
        were dropped. Without shrink no sentence was dropped and those stay as they are."""
        for m in range(len(self.models)):
            static = {id(t) for t in self.static[m]}
            self.static[m] = []  # refilled with the (possibly shrunk) static tensors
            self.states[m] = _select_state(self.states[m], rows, shrink, static, self.static[m])
        if shrink is not None:
            self.memories = [select_batch(mem, shrink) for mem in self.memories]
            self.src_pad_mask = self.src_pad_mask.index_select(0, shrink)


def _leaves(tree: Any, keys: Optional[tuple[str, ...]] = None) -> list[Tensor]:
    """Every tensor in a nested dict/list/tuple; with keys, only those under a dict entry of one of those keys."""
    if isinstance(tree, Tensor):
        return [tree] if keys is None else []
    if isinstance(tree, dict):
        return [t for k, v in tree.items() for t in _leaves(v, None if keys is not None and k in keys else keys)]
    if isinstance(tree, (list, tuple)):
        return [t for v in tree for t in _leaves(v, keys)]
    return []


def _select_state(tree: Any, rows: Tensor, shrink: Optional[Tensor], static: set[int], new_static: list) -> Any:
    """select_batch with `rows`, except static tensors (by id): selected with `shrink`, or kept as
    they are; their results are appended to new_static."""
    if isinstance(tree, Tensor):
        if id(tree) not in static:
            return tree.index_select(0, rows)
        out = tree if shrink is None else tree.index_select(0, shrink)
        new_static.append(out)
        return out
    if isinstance(tree, dict):
        return {k: _select_state(v, rows, shrink, static, new_static) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_select_state(v, rows, shrink, static, new_static) for v in tree)
    return tree


def max_lengths(
    models: list[nn.Module], src_pad_mask: Tensor, cfg: GenerateConfig, start: Optional[Tensor] = None
) -> Tensor:
    """(B,) long: the maximum number of tokens before EOS for each sentence (see module doc); with
    start (B,), the prefix lengths, the prefix is counted in: start + max_len of the tokens after it."""
    src_lens = (~src_pad_mask).sum(dim=1)  # (B,)
    cap = min(int(m.max_positions()[1]) for m in models) - 1
    lens = (cfg.max_len_a * src_lens.double() + cfg.max_len_b).long()  # int() truncation, as fairseq
    if start is None:
        return lens.clamp(min=0, max=max(cap, 0))
    room = (cap - start).clamp(min=0)  # positions left after the prefix
    return start + torch.minimum(lens.clamp(min=0), room)


def prefix_lengths(prefix: Optional[Tensor]) -> Optional[Tensor]:
    """(B,) long: the forced tokens of each sentence of prefix (B, P) right-padded with PAD; None for None."""
    return None if prefix is None else prefix.ne(PAD).sum(dim=1)


def common_head(prefix: Optional[Tensor], start: Optional[Tensor]) -> Optional[Tensor]:
    """(B, m): the first m = min(start) prefix tokens, which every sentence is forced to (None without a prefix)."""
    if prefix is None or start is None:
        return None
    return prefix[:, : int(start.min()) if start.numel() else 0]


def normalize(cum: Tensor, length: int, lenpen: float) -> Tensor:
    """Length-normalised score of hypotheses of `length` tokens (EOS included): cum / length**lenpen."""
    return cum / float(length) ** lenpen


def normalize_rows(cum: Tensor, lengths: Tensor, lenpen: float) -> Tensor:
    """`normalize` with a length per row: cum (N,) / lengths (N,)**lenpen (lengths after a prefix)."""
    return cum / lengths.double().pow(lenpen).to(cum.dtype)


def adjust_lprobs(
    lprobs: Tensor, tokens: Tensor, step: int, max_len: Tensor, cfg: GenerateConfig, start: Optional[Tensor] = None
) -> Tensor:
    """Apply the generation constraints in place and return lprobs (N, V).

    tokens (N, step+1): BOS + the tokens so far; step: number of tokens produced so far;
    max_len (N,): per-row maximum length; start (N,) or None: per-row prefix length, so that
    --min-len counts the tokens after the prefix (max_len already counts the prefix in)."""
    eos_lp = lprobs[:, EOS].clone()
    lprobs[:, PAD] = -math.inf
    lprobs[:, BOS] = -math.inf
    if cfg.unkpen:
        lprobs[:, UNK] -= cfg.unkpen
    if start is None:
        if step < cfg.min_len:
            lprobs[:, EOS] = -math.inf
    else:
        lprobs[step - start < cfg.min_len, EOS] = -math.inf
    n = cfg.no_repeat_ngram_size
    if n > 0 and tokens.size(1) >= n:
        lprobs.masked_fill_(banned_ngram_tokens(tokens, n, lprobs.size(1)), -math.inf)
    force = max_len <= step  # (N,)
    if bool(force.any()):
        lprobs[force] = -math.inf
        lprobs[force, EOS] = eos_lp[force]
    return lprobs


def force_prefix(lprobs: Tensor, step: int, prefix: Tensor, start: Tensor) -> Tensor:
    """Rows still inside their prefix (start > step) get -inf everywhere but at prefix[row, step],
    which gets 0 (the prefix is given, not scored); in place. lprobs (N, V), prefix (N, P), start (N,)."""
    rows = (start > step).nonzero().squeeze(1)  # (F,)
    if rows.numel():
        tok = prefix.index_select(0, rows)[:, step]  # (F,)
        lprobs[rows] = -math.inf
        lprobs[rows, tok] = 0.0
    return lprobs


def banned_ngram_tokens(tokens: Tensor, n: int, vocab: int) -> Tensor:
    """(N, V) bool: tokens that would complete an n-gram already present in tokens (N, T)."""
    grams = tokens.unfold(1, n, 1)  # (N, T-n+1, n)
    if n == 1:
        match = torch.ones(grams.shape[:2], dtype=torch.bool, device=tokens.device)
    else:
        suffix = tokens[:, tokens.size(1) - (n - 1) :]  # (N, n-1): the prefix of the next n-gram
        match = (grams[:, :, :-1] == suffix[:, None, :]).all(dim=-1)  # (N, T-n+1)
    hits = torch.zeros(tokens.size(0), vocab, device=tokens.device)
    hits.scatter_add_(1, grams[:, :, -1], match.float())  # duplicates add up, never overwrite
    return hits > 0


def collect(
    tok: Tensor,
    pos: Tensor,
    lens: Tensor,
    scores: Tensor,
    attn: Optional[Tensor],
    src_pad_mask: Tensor,
    k: int,
    nbest: int,
    start: Optional[Tensor] = None,
) -> list[list[Hypothesis]]:
    """Finished buffers with rows (B*K, ...) -> per sentence the nbest best hypotheses, best first.

    Rows with length 0 or a -inf score are empty slots and are skipped. start (B,) or None: each
    sentence's prefix length; its first start tokens (the prefix) are left out of the hypotheses."""
    bsz = src_pad_mask.size(0)
    scores = scores.view(bsz, k).cpu()
    lens_c = lens.view(bsz, k).cpu()
    order = scores.sort(dim=1, descending=True, stable=True).indices  # (B, K)
    tok, pos = tok.cpu(), pos.cpu()
    attn_c = attn.cpu() if attn is not None else None
    src_real = (~src_pad_mask).cpu()
    first = start.tolist() if start is not None else [0] * bsz
    results: list[list[Hypothesis]] = []
    for b in range(bsz):
        hyps: list[Hypothesis] = []
        for j in order[b].tolist():
            n, s = int(lens_c[b, j]), float(scores[b, j])
            if n == 0 or s == -math.inf or len(hyps) == nbest:
                continue
            r, p = b * k + j, first[b]
            a = attn_c[r, p:n][:, src_real[b]] if attn_c is not None else None
            hyps.append(Hypothesis(tok[r, p:n].clone(), s, pos[r, p:n].clone(), a))
        results.append(hyps)
    return results
