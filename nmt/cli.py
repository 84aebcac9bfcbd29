"""The `nmt` command line: one Typer app, every command a thin wrapper.

Each command parses its flags into a config and makes one library call. Errors a user can
cause arrive as `UserError` and leave as one line on stderr with exit code 2.
"""

from __future__ import annotations

import sys
from typing import List, Optional

import typer

from nmt import __version__
from nmt.errors import UserError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Neural machine translation: preprocess, train, generate, score, visualize-attn.",
)


def _version(value: bool) -> None:
    if value:
        print(f"nmt {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """nmt: a small, fast, readable neural machine translation toolkit."""


def _not_yet(name: str) -> None:
    raise UserError(f"'nmt {name}' is not available in this version yet")


# ---------------------------------------------------------------- preprocess / toy-data (data pipeline)
@app.command()
def preprocess(
    source_lang: str = typer.Option(..., "--source-lang", "-s", help="Source language suffix, e.g. en."),
    target_lang: str = typer.Option(..., "--target-lang", "-t", help="Target language suffix, e.g. de."),
    trainpref: str = typer.Option(..., help="Training files prefix: PREFIX.SRC and PREFIX.TGT."),
    destdir: str = typer.Option(..., help="Output data directory."),
    validpref: Optional[str] = typer.Option(None, help="Validation files prefix."),
    testpref: Optional[str] = typer.Option(None, help="Test prefixes, comma-separated (splits test, test1, ...)."),
    vocab_size: Optional[int] = typer.Option(None, help="Vocabulary size per language (joint size when joined)."),
    joined_dictionary: bool = typer.Option(False, "--joined-dictionary", help="One vocabulary for both languages."),
    trim_target_vocab: bool = typer.Option(
        False,
        "--trim-target-vocab",
        help="With --joined-dictionary: number the pieces of the target training text first and give the "
        "model an output layer over those only.",
    ),
    spm_model_type: Optional[str] = typer.Option(None, help="SentencePiece model: unigram | bpe."),
    tokenizer: Optional[str] = typer.Option(
        None, help="sentencepiece, or none for text already tokenized (space-separated words)."
    ),
    max_len: Optional[int] = typer.Option(None, help="Drop training pairs with more tokens on a side."),
    max_len_ratio: Optional[float] = typer.Option(None, help="Drop training pairs with a larger length ratio."),
    workers: Optional[int] = typer.Option(None, help="Processes encoding text in parallel."),
    character_coverage: Optional[float] = typer.Option(None, help="SentencePiece character coverage."),
    input_sentence_size: Optional[int] = typer.Option(None, help="SentencePiece samples at most this many lines."),
    seed: Optional[int] = typer.Option(None, help="Seed of SentencePiece's input sample."),
    subword_samples: Optional[int] = typer.Option(
        None, help="Also write this many copies of train with sampled segmentations; training takes one per epoch."
    ),
    subword_alpha: Optional[float] = typer.Option(
        None, help="Sampling of those copies: unigram smoothing (smaller, more varied) or BPE-dropout rate."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing non-empty destdir."),
) -> None:
    """Train SentencePiece and binarize parallel text into a data directory.

    Defaults of the omitted options come from nmt.config.PreprocessConfig.
    """
    from nmt.config import PreprocessConfig
    from nmt.data.preprocess import preprocess as run

    given = dict(
        vocab_size=vocab_size,
        spm_model_type=spm_model_type,
        tokenizer=tokenizer,
        max_len=max_len,
        max_len_ratio=max_len_ratio,
        workers=workers,
        character_coverage=character_coverage,
        input_sentence_size=input_sentence_size,
        seed=seed,
        subword_samples=subword_samples,
        subword_alpha=subword_alpha,
    )
    cfg = PreprocessConfig(
        source_lang=source_lang,
        target_lang=target_lang,
        trainpref=trainpref,
        destdir=destdir,
        validpref=validpref,
        testpref=[p for p in (testpref or "").split(",") if p],
        joined_dictionary=joined_dictionary,
        trim_target_vocab=trim_target_vocab,
        force=force,
        **{k: v for k, v in given.items() if v is not None},
    )
    run(cfg)


@app.command("toy-data")
def toy_data(
    out: str = typer.Option(..., help="Output directory: train/valid/test .en and .fr files."),
    pairs: Optional[int] = typer.Option(None, help="Sentence pairs in total (train + valid + test); 50000."),
    seed: Optional[int] = typer.Option(None, help="Random seed (1); the same seed gives the same files."),
    valid: Optional[int] = typer.Option(None, help="Validation pairs (default: 1%, at least a few hundred)."),
    test: Optional[int] = typer.Option(None, help="Test pairs (default: as many as validation)."),
) -> None:
    """Write the embedded English->French toy corpus (works offline)."""
    from nmt.data.toy import write_toy_corpus

    given = dict(pairs=pairs, seed=seed)
    sizes = write_toy_corpus(out, valid=valid, test=test, **{k: v for k, v in given.items() if v is not None})
    print(" ".join(f"{k}={v}" for k, v in sizes.items()), file=sys.stderr)


# ---------------------------------------------------------------- train / list-archs
@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)
def train(ctx: typer.Context) -> None:
    """Train a translation model on a data directory written by `nmt preprocess` (--help lists every flag)."""
    from nmt import flags

    if any(a in ("--help", "-h") for a in ctx.args):
        print(flags.train_help())
        print(_archs_text())
        raise typer.Exit()
    cfg, model_overrides = flags.parse_train_args(list(ctx.args))
    from nmt.training.loop import train as run_training

    raise typer.Exit(run_training(cfg, model_overrides))


def _archs_text() -> str:
    from nmt.models import arch_summaries

    rows = arch_summaries()
    width = max(len(r["arch"]) for r in rows)
    lines = ["architectures (nmt list-archs):"]
    for r in rows:
        lines.append(f"  {r['arch']:<{width}}  {r['family']:<11} {r['sizes']}")
    return "\n".join(lines)


@app.command("list-archs")
def list_archs(
    vocab_size: int = typer.Option(8000, help="Joined vocabulary size used to count parameters."),
) -> None:
    """List the registered architectures with their key sizes and parameter counts."""
    from rich.console import Console
    from rich.table import Table

    from nmt.models import arch_summaries

    table = Table(title=f"architectures (parameters with a joined vocabulary of {vocab_size})")
    for col in ("arch", "family", "sizes", "parameters"):
        table.add_column(col)
    for r in arch_summaries(vocab_size):
        table.add_row(r["arch"], r["family"], r["sizes"], f"{r['params'] / 1e6:.1f}M")
    Console().print(table)


# ---------------------------------------------------------------- generate / score / average-checkpoints
@app.command()
def generate(
    data: Optional[str] = typer.Argument(
        None, metavar="DATA_DIR", help="Binarized data dir: translate --gen-subset and score it."
    ),
    path: str = typer.Option(..., help="Checkpoint; a.pt:b.pt for an ensemble."),
    gen_subset: Optional[str] = typer.Option(None, help="Split of DATA_DIR (test)."),
    input: Optional[str] = typer.Option(None, "--input", help="Raw text file, one sentence a line; - for stdin."),
    output: Optional[str] = typer.Option(None, help="Output file (written atomically); default stdout."),
    beam: Optional[int] = typer.Option(None, help="Beam width (5); samples per sentence with --sampling."),
    nbest: Optional[int] = typer.Option(None, help="Hypotheses per sentence in --format fairseq (1)."),
    lenpen: Optional[float] = typer.Option(None, help="Length penalty: score / length**lenpen (1.0)."),
    max_len_a: Optional[float] = typer.Option(None, help="Max length = a * source length + b (0)."),
    max_len_b: Optional[int] = typer.Option(None, help="Max length = a * source length + b (200)."),
    min_len: Optional[int] = typer.Option(None, help="Minimum tokens before EOS (1)."),
    no_repeat_ngram_size: Optional[int] = typer.Option(None, help="Never repeat an n-gram of this size (0: off)."),
    unkpen: Optional[float] = typer.Option(None, help="Subtracted from the UNK log-prob (0)."),
    sampling: bool = typer.Option(False, "--sampling", help="Sample instead of beam search."),
    sampling_topk: Optional[int] = typer.Option(None, help="Sample among the k best tokens (-1: off)."),
    sampling_topp: Optional[float] = typer.Option(None, help="Sample within top-p probability mass (-1: off)."),
    temperature: Optional[float] = typer.Option(None, help="Softmax temperature (1.0)."),
    seed: Optional[int] = typer.Option(None, help="Seed of --sampling (1)."),
    max_tokens: Optional[int] = typer.Option(None, help="Source tokens per batch, padding included (8000)."),
    batch_size: Optional[int] = typer.Option(None, help="Cap on sentences per batch."),
    device: Optional[str] = typer.Option(None, help="auto | cpu | cuda (auto)."),
    amp: Optional[str] = typer.Option(None, help="none | bf16 | fp16 (none)."),
    threads: Optional[int] = typer.Option(None, help="CPU threads in all (torch's default)."),
    workers: Optional[int] = typer.Option(None, help="Batches decoded at once, sharing --threads (1)."),
    format: Optional[str] = typer.Option(None, "--format", help="plain | fairseq (plain)."),
    print_alignment: bool = typer.Option(False, "--print-alignment", help="A-i alignment lines (--format fairseq)."),
    quiet: bool = typer.Option(
        False, "--quiet", help="Only the summary (and BLEU) on stdout; --output still gets the translations."
    ),
    chunk_size: Optional[int] = typer.Option(None, help="Raw text lines translated and written at a time (2000)."),
) -> None:
    """Translate a binarized split or raw text with a trained checkpoint.

    Translations go to stdout (or --output); progress and a summary (speed, and BLEU with its
    sacreBLEU signature when DATA_DIR has references) go to stderr. Defaults of omitted options
    come from nmt.config.GenerateConfig.
    """
    from nmt.config import GenerateConfig
    from nmt.generation.generate import run
    from nmt.generation.output import Progress, summary

    given = dict(
        gen_subset=gen_subset,
        input=input,
        output=output,
        beam=beam,
        nbest=nbest,
        lenpen=lenpen,
        max_len_a=max_len_a,
        max_len_b=max_len_b,
        min_len=min_len,
        no_repeat_ngram_size=no_repeat_ngram_size,
        unkpen=unkpen,
        sampling_topk=sampling_topk,
        sampling_topp=sampling_topp,
        temperature=temperature,
        seed=seed,
        max_tokens=max_tokens,
        batch_size=batch_size,
        device=device,
        amp=amp,
        threads=threads,
        workers=workers,
        format=format,
        chunk_size=chunk_size,
    )
    cfg = GenerateConfig(
        path=path,
        data=data,
        sampling=sampling,
        print_alignment=print_alignment,
        quiet=quiet,
        **{k: v for k, v in given.items() if v is not None},
    )
    try:
        with Progress(enabled=not quiet) as progress:
            stats = run(cfg, progress)
    except BrokenPipeError:  # the reader went away (e.g. `| head`): stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(0) from None
    for line in summary(stats):
        print(line, file=sys.stderr)


@app.command("average-checkpoints")
def average_checkpoints(
    inputs: List[str] = typer.Option(..., help="Checkpoint files, or one directory with --num-*-checkpoints."),
    more: Optional[List[str]] = typer.Argument(
        None,
        metavar="CHECKPOINT",
        show_default=False,
        help="More checkpoint files: `--inputs a.pt b.pt c.pt` averages all three.",
    ),
    output: str = typer.Option(..., help="Averaged checkpoint to write (atomically)."),
    num_epoch_checkpoints: Optional[int] = typer.Option(None, help="Average the last N checkpointN.pt of the dir."),
    num_update_checkpoints: Optional[int] = typer.Option(None, help="Average the last N checkpoint_E_U.pt of the dir."),
    trained_weights: bool = typer.Option(
        False,
        "--trained-weights",
        help="Average the weights training reached, not the moving average that checkpoints saved "
        "with --ema-decay hold as their model (one input: extract them).",
    ),
) -> None:
    """Average the weights of several checkpoints into one."""
    import os

    from nmt.checkpoint import average, epoch_checkpoints, save, update_checkpoints

    if num_epoch_checkpoints is not None and num_update_checkpoints is not None:
        raise UserError("give --num-epoch-checkpoints or --num-update-checkpoints, not both")
    count = num_epoch_checkpoints if num_epoch_checkpoints is not None else num_update_checkpoints
    inputs = list(inputs) + list(more or [])
    if count is None:
        missing = [p for p in inputs if not os.path.isfile(p)]
        if missing:
            raise UserError(f"--inputs {missing[0]} is not a file (a directory needs --num-epoch-checkpoints N)")
        paths = list(inputs)
    else:
        flag = "--num-epoch-checkpoints" if num_epoch_checkpoints is not None else "--num-update-checkpoints"
        if count < 1:
            raise UserError(f"{flag} must be >= 1, got {count}")
        if len(inputs) != 1 or not os.path.isdir(inputs[0]):
            raise UserError(f"{flag} needs exactly one directory in --inputs")
        found = (epoch_checkpoints if num_epoch_checkpoints is not None else update_checkpoints)(inputs[0])
        if len(found) < count:
            raise UserError(f"{flag} {count}: {inputs[0]} has only {len(found)} such checkpoint(s)")
        paths = found[-count:]
    save(output, average(paths, trained=trained_weights))
    print(
        f"averaged {len(paths)} checkpoints ({', '.join(os.path.basename(p) for p in paths)}) into {output}",
        file=sys.stderr,
    )


@app.command()
def score(
    sys_: List[str] = typer.Option(..., "--sys", help="System output (repeat for several systems)."),
    ref: List[str] = typer.Option(..., "--ref", help="Reference (repeat for several references)."),
    metrics: str = typer.Option("bleu", help="Comma list of bleu, chrf, ter."),
    tokenize: str = typer.Option("13a", help="sacreBLEU tokenizer for BLEU (13a, intl, zh, char, none, ...)."),
    lowercase: bool = typer.Option(False, "--lowercase", help="Case-insensitive scores."),
    json_: bool = typer.Option(False, "--json", help="Print one JSON object instead of text."),
) -> None:
    """Score system outputs against references with sacreBLEU (BLEU, chrF, TER).

    With several --sys, a table compares them, with paired bootstrap resampling p-values
    against the first system.
    """
    import json

    from rich.console import Console

    from nmt.generation.score import parse_metrics, render, score_files

    report = score_files(list(sys_), list(ref), parse_metrics(metrics), tokenize, lowercase)
    if json_:
        print(json.dumps(report.to_json()))
    else:
        console = Console()
        render(report, console if console.is_terminal else Console(width=160))


# ---------------------------------------------------------------- visualize-attn
@app.command("visualize-attn")
def visualize_attn(
    data: Optional[str] = typer.Argument(
        None, metavar="DATA_DIR", help="Binarized data dir (with --gen-subset, --index)."
    ),
    path: str = typer.Option(..., help="Checkpoint to visualize."),
    source: Optional[str] = typer.Option(None, help="Source sentence (raw text)."),
    target: Optional[str] = typer.Option(None, help="Reference to teacher-force (default: the model's translation)."),
    input: Optional[str] = typer.Option(None, "--input", help="Raw text file, one sentence a line (with --index)."),
    index: Optional[int] = typer.Option(None, help="0-based sentence index in --input or the split (0)."),
    gen_subset: Optional[str] = typer.Option(None, help="Split of DATA_DIR (test)."),
    reference: Optional[bool] = typer.Option(
        None, "--reference/--no-reference", help="Teacher-force the split's reference (on) or translate."
    ),
    beam: Optional[int] = typer.Option(None, help="Beam of the model's own translation (5)."),
    out: Optional[str] = typer.Option(None, help="Output directory (attn)."),
    format: Optional[str] = typer.Option(None, "--format", help="png | svg | pdf (png)."),
    dpi: Optional[int] = typer.Option(None, help="Resolution of png figures (100)."),
    kinds: Optional[str] = typer.Option(None, help="Comma list of enc_self, dec_self, cross (all)."),
    layers: Optional[str] = typer.Option(None, help="1-based layers, e.g. 1,3-4 (all)."),
    heads: Optional[str] = typer.Option(None, help="1-based heads, e.g. 1-4 (all)."),
    max_pieces: Optional[int] = typer.Option(None, help="Cut longer sentences in the figures (60)."),
    compare: Optional[List[str]] = typer.Option(None, help="Another checkpoint drawn side by side (repeatable)."),
    compare_init: bool = typer.Option(False, "--compare-init", help="Add the architecture with fresh random weights."),
    seed: Optional[int] = typer.Option(None, help="Seed of the --compare-init weights (1)."),
    max_sentences: Optional[int] = typer.Option(None, help="Average statistics over the first N sentences (1)."),
    html: bool = typer.Option(False, "--html", help="Also write OUT/report.html (self-contained)."),
    device: Optional[str] = typer.Option(None, help="auto | cpu | cuda (auto)."),
) -> None:
    """Export attention heatmaps per kind, layer and head; compare checkpoints.

    Files in OUT: {kind}_L{n}.{fmt} (every head), {kind}_L{n}_mean.{fmt}
    (head average), compare_{kind}_L{n}.{fmt} (--compare / --compare-init),
    stats.csv, stats.json, report.html (--html).
    Defaults of omitted options come from nmt.config.VisualizeConfig.
    """
    from rich.console import Console

    from nmt.config import VisualizeConfig
    from nmt.viz.attention import parse_int_list, run
    from nmt.viz.figures import stats_table

    given = dict(
        index=index,
        gen_subset=gen_subset,
        reference=reference,
        beam=beam,
        out=out,
        format=format,
        dpi=dpi,
        max_pieces=max_pieces,
        seed=seed,
        max_sentences=max_sentences,
        device=device,
    )
    cfg = VisualizeConfig(
        path=path,
        source=source,
        target=target,
        input=input,
        data=data,
        compare=list(compare or []),
        compare_init=compare_init,
        html=html,
        kinds=[k for k in (kinds or "").replace(" ", "").split(",") if k],
        layers=parse_int_list(layers, "--layers"),
        heads=parse_int_list(heads, "--heads"),
        **{k: v for k, v in given.items() if v is not None},
    )
    result = run(cfg)
    console = Console(width=None if sys.stdout.isatty() else 160)  # files and pipes get the whole table
    s = result.sentence
    console.print(f"source: {s.src_text}\ntarget ({s.tgt_origin}, teacher-forced): {s.tgt_text}", markup=False)
    console.print(stats_table(result.rows, f"attention heads over {result.n_sentences} sentence(s)"))
    for line in result.summaries:
        console.print(line, markup=False)
    print(f"wrote {len(result.files)} files to {result.out}", file=sys.stderr)


def main() -> None:
    """Console entry point: run the app; a UserError becomes one stderr line and exit code 2."""
    try:
        app()
    except UserError as e:
        msg = " ".join(str(e).split("\n"))
        print(f"error: {msg}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:  # Ctrl-C outside training's own handler (which saves first): nothing to lose
        print("interrupted", file=sys.stderr)
        sys.exit(130)
