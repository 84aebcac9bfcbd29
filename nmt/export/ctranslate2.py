"""A Transformer translation checkpoint as a CTranslate2 model directory (`ctranslate2.Translator(DIR)` loads it).

The model is described with CTranslate2's own converter API: `CheckpointConverter._load` fills a
`ctranslate2.specs.TransformerSpec`, and `Converter.convert` validates it, quantizes it and writes
model.bin, config.json and the vocabularies. Shape legend: V vocabulary, K output pieces, D model
dim, F feed-forward dim, P positions.

Where each nmt weight goes (encoder and decoder alike; cross-attention in the decoder only):
    embed_tokens (V, D)             embeddings.weight; scale_embeddings = not no_scale_embedding (sqrt D)
    positions                       position_encodings.encodings (P, D): nmt's own table, sinusoidal or
                                    learned, rows 0..P-1 for positions 0..P-1 (CTranslate2 would otherwise
                                    compute sinusoids from position 1, with its own rounding)
    self_attn.qkv_proj (3D, D)      self_attention.linear[0] (q, k, v stacked, as CTranslate2 fuses them)
    self_attn.out_proj              self_attention.linear[1]
    cross_attn.q_proj, kv_proj      attention.linear[0], attention.linear[1] (k, v stacked), out_proj linear[2]
    *_norm                          the layer_norm of the same sublayer (before it pre-norm, after it post-norm)
    ffn.fc1, ffn.fc2                ffn.linear_0, ffn.linear_1; activation relu or gelu (erf: CTranslate2's GELU)
    final_norm (pre-norm)           layer_norm
    output_weight() (K, D)          decoder projection (no bias); the decoder embedding keeps its first K rows

Token conventions are nmt's: vocabularies are the pieces in id order (CTranslate2 token i is nmt id
i; the target one holds the K pieces of the output layer, fewer than the source's after
`preprocess --trim-target-vocab`), the source gets </s> appended (add_source_eos), decoding starts
from <s>, and the layer norm epsilon is the model's.
"""

from __future__ import annotations

import json
import os

import numpy as np
import torch
from torch import Tensor, nn

from nmt import __version__
from nmt.checkpoint import Loaded
from nmt.data.tokenizer import BOS, EOS, SPECIAL_PIECES, UNK
from nmt.errors import UserError
from nmt.models.layers import DecoderLayer, EncoderLayer, FeedForward, MultiheadAttention
from nmt.models.transformer import TransformerModel

# An optional dependency (pip install "nmt[ct2]"): the command says how to get it instead of failing on import.
try:
    import ctranslate2
    from ctranslate2.converters import Converter
    from ctranslate2.specs import common_spec, transformer_spec
except ImportError:
    ctranslate2 = None
    Converter = object  # so that the class below is defined; `require_ctranslate2` stops every use

INSTALL_HINT = 'the ctranslate2 format needs the ctranslate2 package: pip install "nmt[ct2]"'
ACTIVATIONS = {"relu": "RELU", "gelu": "GELU"}  # nmt's F.relu, F.gelu (erf) -> CTranslate2's Activation names
SPM_FILES = ("source.spm", "target.spm")


def require_ctranslate2() -> None:
    """UserError with the install command when ctranslate2 is not installed."""
    if ctranslate2 is None:
        raise UserError(INSTALL_HINT)


# ----------------------------------------------------------------------------- what exports
def check_exportable(loaded: Loaded, path: str) -> None:
    """UserError unless CTranslate2 can run this model exactly as nmt does."""
    family = loaded.model_cfg.family
    if family == "lstm":
        raise UserError(f"{path} is an LSTM model; CTranslate2 runs Transformers only (it has no recurrent layers)")
    if family != "transformer":
        raise UserError(
            f"{path} is a {family} model (not a translation model); only translation Transformers export to ctranslate2"
        )
    model = loaded.model
    if not isinstance(model, TransformerModel):
        raise UserError(f"{path}: unexpected model class {type(model).__name__} for family transformer")
    act = loaded.model_cfg.activation_fn
    if act not in ACTIVATIONS:
        raise UserError(f"{path}: activation {act!r} has no exact CTranslate2 equivalent (valid: relu, gelu)")
    if model.encoder.embed_norm is not None:
        raise UserError(
            f"{path}: a layer norm on the encoder's embeddings cannot be exported to a CTranslate2 Transformer"
        )
    norms = [m for m in model.modules() if isinstance(m, nn.LayerNorm)]
    if len({m.eps for m in norms}) > 1 or any(not m.elementwise_affine for m in norms):
        raise UserError(f"{path}: layer norms with different epsilons or without weights cannot be exported")
    for side, tok in (("source", loaded.src_tok), ("target", loaded.tgt_tok)):
        pieces = vocabulary(tok)
        if len(set(pieces)) != len(pieces):
            raise UserError(f"{path}: the {side} vocabulary has repeated pieces; CTranslate2 looks tokens up by text")


def vocabulary(tok) -> list[str]:
    """The tokenizer's pieces in id order (specials as <pad> <unk> <s> </s>)."""
    return tok.pieces(range(tok.vocab_size))


# ----------------------------------------------------------------------------- filling the spec
def _array(t: Tensor) -> np.ndarray:
    """A float32 copy: CTranslate2 quantizes arrays in place, and views of one weight must stay apart."""
    return t.detach().to("cpu", torch.float32).numpy().copy()


def _linear(spec, layer: nn.Linear) -> None:
    spec.weight = _array(layer.weight)
    if layer.bias is not None:
        spec.bias = _array(layer.bias)


def _norm(spec, norm: nn.LayerNorm) -> None:
    spec.gamma, spec.beta = _array(norm.weight), _array(norm.bias)


def _attention(spec, attn: MultiheadAttention, norm: nn.LayerNorm) -> None:
    """Self-attention: linear [qkv (3D, D), out]; cross-attention: [q (D, D), kv (2D, D_enc), out]."""
    _norm(spec.layer_norm, norm)
    projections = [attn.qkv_proj] if attn.self_attention else [attn.q_proj, attn.kv_proj]
    for linear_spec, layer in zip(spec.linear, [*projections, attn.out_proj]):
        _linear(linear_spec, layer)


def _ffn(spec, ffn: FeedForward, norm: nn.LayerNorm) -> None:
    _norm(spec.layer_norm, norm)
    _linear(spec.linear_0, ffn.fc1)
    _linear(spec.linear_1, ffn.fc2)


def _encoder_layer(spec, layer: EncoderLayer) -> None:
    _attention(spec.self_attention, layer.self_attn, layer.self_attn_norm)
    _ffn(spec.ffn, layer.ffn, layer.ffn_norm)


def _decoder_layer(spec, layer: DecoderLayer) -> None:
    _attention(spec.self_attention, layer.self_attn, layer.self_attn_norm)
    _attention(spec.attention, layer.cross_attn, layer.cross_attn_norm)
    _ffn(spec.ffn, layer.ffn, layer.ffn_norm)


def fill_spec(loaded: Loaded):
    """The `ctranslate2.specs.TransformerSpec` of a loaded Transformer translation checkpoint, vocabularies included."""
    model, cfg = loaded.model, loaded.model_cfg
    activation = getattr(common_spec.Activation, ACTIVATIONS[cfg.activation_fn])
    sides = dict(pre_norm=cfg.normalize_before, activation=activation)
    encoder = transformer_spec.TransformerEncoderSpec(cfg.encoder_layers, cfg.encoder_attention_heads, **sides)
    decoder = transformer_spec.TransformerDecoderSpec(cfg.decoder_layers, cfg.decoder_attention_heads, **sides)
    spec = transformer_spec.TransformerSpec(encoder, decoder)

    enc, dec = model.encoder, model.decoder
    encoder.embeddings[0].weight = _array(enc.embed_tokens.weight)  # (V_src, D)
    encoder.scale_embeddings = not cfg.no_scale_embedding
    encoder.position_encodings.encodings = _array(enc.positions(cfg.max_source_positions, 0, torch.device("cpu")))
    for layer_spec, layer in zip(encoder.layer, enc.layers):
        _encoder_layer(layer_spec, layer)

    out = dec.output_weight()  # (K, D)
    k = out.size(0)
    decoder.embeddings.weight = _array(dec.embed_tokens.weight[:k])  # only output pieces are ever fed back
    decoder.scale_embeddings = not cfg.no_scale_embedding
    decoder.position_encodings.encodings = _array(dec.positions(cfg.max_target_positions, 0, torch.device("cpu")))
    for layer_spec, layer in zip(decoder.layer, dec.layers):
        _decoder_layer(layer_spec, layer)
    decoder.projection.weight = _array(out)
    if cfg.normalize_before:
        _norm(encoder.layer_norm, enc.final_norm)
        _norm(decoder.layer_norm, dec.final_norm)

    spec.register_source_vocabulary(vocabulary(loaded.src_tok))
    spec.register_target_vocabulary(vocabulary(loaded.tgt_tok)[:k])
    config = spec.config
    config.unk_token, config.bos_token, config.eos_token = (SPECIAL_PIECES[i] for i in (UNK, BOS, EOS))
    config.decoder_start_token = SPECIAL_PIECES[BOS]  # nmt's decoder input starts with BOS
    config.add_source_bos, config.add_source_eos = False, True  # nmt's source: pieces + EOS
    config.layer_norm_epsilon = next(m.eps for m in model.modules() if isinstance(m, nn.LayerNorm))
    return spec


class CheckpointConverter(Converter):
    """CTranslate2's converter interface over a loaded nmt checkpoint (`Converter.convert` writes the model)."""

    def __init__(self, loaded: Loaded) -> None:
        self.loaded = loaded

    def _load(self):
        return fill_spec(self.loaded)


# ----------------------------------------------------------------------------- the directory
def write(loaded: Loaded, out_dir: str, quantization: str, checkpoint: str) -> None:
    """Write the CTranslate2 model, the SentencePiece models and a description into `out_dir` (a fresh directory)."""
    require_ctranslate2()
    CheckpointConverter(loaded).convert(out_dir, quantization=quantization, force=True)
    meta, blobs = loaded.meta, loaded.payload["tokenizer_blobs"]
    tok = meta["tokenizer"]
    if tok["type"] == "sentencepiece":
        for name, lang in zip(SPM_FILES, (meta["source_lang"], meta["target_lang"])):
            with open(os.path.join(out_dir, name), "wb") as f:
                f.write(blobs[tok["files"][lang]])
    info = description(loaded, quantization, checkpoint)
    with open(os.path.join(out_dir, "nmt_export.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    with open(os.path.join(out_dir, "README.md"), "w", encoding="utf-8") as f:
        f.write(readme(info))


def description(loaded: Loaded, quantization: str, checkpoint: str) -> dict:
    """What nmt_export.json records: where the model came from and how to feed it."""
    meta, cfg = loaded.meta, loaded.model_cfg
    spm = meta["tokenizer"]["type"] == "sentencepiece"
    return {
        "exported_by": f"nmt {__version__} (nmt export --format ctranslate2)",
        "ctranslate2_version": ctranslate2.__version__,
        "checkpoint": os.path.basename(checkpoint),
        "arch": loaded.arch,
        "source_lang": meta["source_lang"],
        "target_lang": meta["target_lang"],
        "quantization": quantization,
        "tokenizer": meta["tokenizer"]["type"],
        "tokenizer_files": dict(zip(("source", "target"), SPM_FILES)) if spm else None,
        "source_vocab_size": loaded.src_tok.vocab_size,
        "target_vocab_size": int(loaded.model.decoder.output_weight().size(0)),
        "max_source_positions": cfg.max_source_positions,
        "max_target_positions": cfg.max_target_positions,
        "source_eos_added_by_ctranslate2": True,
    }


def readme(info: dict) -> str:
    """README.md of the exported directory: how it was made and the lines that translate with it."""
    if info["tokenizer"] == "sentencepiece":
        imports = "import ctranslate2\nimport sentencepiece as spm\n"
        load = (
            'sp_src = spm.SentencePieceProcessor(model_file="source.spm")\n'
            'sp_tgt = spm.SentencePieceProcessor(model_file="target.spm")\n'
        )
        encode, decode = "sp_src.encode(line, out_type=str)", "sp_tgt.decode(r.hypotheses[0])"
    else:  # a word vocabulary: text that is already tokenized
        imports, load = "import ctranslate2\n", ""
        encode, decode = "line.split()", '" ".join(r.hypotheses[0])'
    max_in, max_out = info["max_source_positions"], min(201, info["max_target_positions"])
    return f"""# {info["source_lang"]}->{info["target_lang"]} translation model for CTranslate2

Exported by {info["exported_by"]} from `{info["checkpoint"]}` (arch `{info["arch"]}`) with
CTranslate2 {info["ctranslate2_version"]}, {info["quantization"]} weights; `nmt_export.json` has the details.
Run from this directory:

```python
{imports}
translator = ctranslate2.Translator(".", device="cpu")
{load}lines = ["..."]
tokens = [{encode} for line in lines]  # no </s>: the model appends it
results = translator.translate_batch(tokens, beam_size=5, max_input_length={max_in}, max_decoding_length={max_out})
for r in results:
    print({decode})
```

`max_input_length` {max_in} truncates a longer source as nmt does (its first pieces and </s>), and
`max_decoding_length` may reach {info["max_target_positions"]}: the model has positions for that
many tokens. How CTranslate2's search options map to nmt's (length penalty, limits, scores): nmt's
docs/deploy.md.
"""
