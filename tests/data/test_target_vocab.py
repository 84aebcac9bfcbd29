"""preprocess --trim-target-vocab: the joint dictionary renumbered, the output layer over the target pieces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import cli, shrink
from rich.console import Console

from nmt.checkpoint import load_models
from nmt.config import PreprocessConfig
from nmt.data.dataset import load_split, read_meta
from nmt.data.preprocess import preprocess
from nmt.data.target_vocab import renumbering, reorder_lines, reorder_sentencepiece
from nmt.data.tokenizer import UNK, SentencePieceTokenizer, WordTokenizer, load_tokenizers, read_blobs
from nmt.errors import UserError
from nmt.models import arch_config, build_model

SIZES = [
    "--encoder-layers=1",
    "--decoder-layers=1",
    "--encoder-embed-dim=32",
    "--decoder-embed-dim=32",
    "--encoder-ffn-embed-dim=64",
    "--decoder-ffn-embed-dim=64",
    "--dropout=0.0",
]


def test_renumbering_puts_used_ids_first_in_their_order() -> None:
    used = np.array([1, 1, 1, 1, 0, 1, 0, 0, 1], dtype=bool)
    new_of_old, k = renumbering(used)
    assert k == 6
    assert new_of_old.tolist() == [0, 1, 2, 3, 6, 4, 7, 8, 5]
    assert reorder_lines(b"a\nb\nc\nd\ne\nf\ng\nh\ni\n", new_of_old) == b"a\nb\nc\nd\nf\ni\ne\ng\nh\n"


def test_renumbered_sentencepiece_segments_every_line_as_before(toy_data_dir: Path, toy_raw_dir: Path) -> None:
    old = SentencePieceTokenizer((toy_data_dir / "spm.model").read_bytes())
    used = np.zeros(old.vocab_size, dtype=bool)
    used[:4] = True
    used[4::3] = True  # an arbitrary subset: renumbering must not depend on which pieces come first
    new_of_old, _ = renumbering(used)
    new = SentencePieceTokenizer(reorder_sentencepiece(old.model, new_of_old))
    assert new.vocab_size == old.vocab_size
    for lang in ("en", "fr"):
        lines = (toy_raw_dir / f"train.{lang}").read_text(encoding="utf-8").splitlines()[:400]
        for line in lines:
            ids = old.encode(line)
            assert new.encode(line) == new_of_old[ids].tolist()
            assert new.decode(new_of_old[ids].tolist()) == old.decode(ids)
    assert [new.pieces([new_of_old[i]])[0] for i in range(old.vocab_size)] == old.pieces(range(old.vocab_size))


def _trimmed(toy_raw_dir: Path, dest: Path, **extra) -> Path:
    cfg = PreprocessConfig(
        source_lang="en",
        target_lang="fr",
        trainpref=str(toy_raw_dir / "train"),
        validpref=str(toy_raw_dir / "valid"),
        testpref=[str(toy_raw_dir / "test")],
        destdir=str(dest),
        vocab_size=300,
        joined_dictionary=True,
        trim_target_vocab=True,
        **extra,
    )
    preprocess(cfg, console=Console(quiet=True))
    return dest


def test_trimmed_data_is_the_same_data_renumbered(toy_data_dir: Path, toy_raw_dir: Path, tmp_path: Path) -> None:
    trimmed = _trimmed(toy_raw_dir, tmp_path / "bin")
    meta, base_meta = read_meta(str(trimmed)), read_meta(str(toy_data_dir))
    k = meta["vocab_size"]["fr"]
    assert meta["vocab_size"]["en"] == base_meta["vocab_size"]["en"] == 300 and 4 < k < 300
    old, _ = load_tokenizers(base_meta, read_blobs(str(toy_data_dir), base_meta))
    new, new_tgt = load_tokenizers(meta, read_blobs(str(trimmed), meta))
    assert new is new_tgt  # still one joint tokenizer
    by_piece = {p: i for i, p in enumerate(new.pieces(range(300)))}
    new_of_old = np.array([by_piece[p] for p in old.pieces(range(300))])
    assert sorted(new_of_old.tolist()) == list(range(300))
    for split in ("train", "valid", "test"):
        a, b = load_split(str(toy_data_dir), split, base_meta), load_split(str(trimmed), split, meta)
        assert len(a) == len(b)
        assert np.array_equal(np.asarray(b.src.tokens), new_of_old[np.asarray(a.src.tokens)])
        expect = new_of_old[np.asarray(a.tgt.tokens)]
        if split == "train":
            assert expect.max() < k  # every target training piece is inside the output layer
        outside = int((expect >= k).sum())
        expect[expect >= k] = UNK
        assert np.array_equal(np.asarray(b.tgt.tokens), expect)
        assert meta["splits"][split]["unknown"]["fr"] == base_meta["splits"][split]["unknown"]["fr"] + outside
        assert meta["splits"][split]["unknown"]["en"] == base_meta["splits"][split]["unknown"]["en"]
    # the first K pieces are exactly those of the French training text
    fr_train = {
        p
        for line in (toy_raw_dir / "train.fr").read_text(encoding="utf-8").splitlines()
        for p in new.pieces(new.encode(line.strip()))
    }
    assert fr_train | {"<pad>", "<unk>", "<s>", "</s>"} == set(new.pieces(range(k)))


def test_trimming_counts_the_sampled_segmentations(toy_raw_dir: Path, tmp_path: Path) -> None:
    data = _trimmed(toy_raw_dir, tmp_path / "bin", subword_samples=2)
    meta = read_meta(str(data))
    k = meta["vocab_size"]["fr"]
    for name in ("train", "train.sample1", "train.sample2"):
        assert int(np.asarray(load_split(str(data), name, meta).tgt.tokens).max()) < k


def test_word_vocabulary_is_renumbered_too(toy_raw_dir: Path, tmp_path: Path) -> None:
    data = _trimmed(toy_raw_dir, tmp_path / "bin", tokenizer="none")
    meta = read_meta(str(data))
    k = meta["vocab_size"]["fr"]
    tok, _ = load_tokenizers(meta, read_blobs(str(data), meta))
    assert isinstance(tok, WordTokenizer) and tok.words[:4] == ["<pad>", "<unk>", "<s>", "</s>"]
    train = load_split(str(data), "train", meta)
    lines = (toy_raw_dir / "train.fr").read_text(encoding="utf-8").splitlines()
    assert [tok.encode(x) for x in lines[:50]] == [train.tgt[i].tolist() for i in range(50)]
    in_vocab = {w for x in lines for w in x.split() if w in tok.index}  # 300 words do not hold them all
    assert set(tok.words[:k]) == in_vocab | set(tok.words[:4]) and k < 300


def test_trim_needs_a_joined_dictionary(toy_raw_dir: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    code, _, err = cli(
        monkeypatch,
        capsys,
        "preprocess",
        "-s",
        "en",
        "-t",
        "fr",
        "--trainpref",
        str(toy_raw_dir / "train"),
        "--destdir",
        str(tmp_path / "bin"),
        "--trim-target-vocab",
    )
    assert code == 2 and "--trim-target-vocab needs --joined-dictionary" in err
    assert not (tmp_path / "bin").exists()


@pytest.mark.parametrize("arch", ["transformer_tiny", "lstm_luong"])
def test_shared_embeddings_score_only_the_first_rows(arch: str) -> None:
    torch.manual_seed(0)
    cfg = shrink(arch_config(arch, {"share_all_embeddings": "true"}))
    model = build_model(cfg, 50, 30, True).eval()
    src, tgt = torch.randint(4, 50, (2, 5)), torch.randint(4, 30, (2, 4))
    logits = model(src, src == 0, tgt)
    assert logits.shape == (2, 4, 30)
    emb = model.encoder.embed_tokens if hasattr(model.encoder, "embed_tokens") else model.encoder.embed
    assert sum(p.numel() for p in model.parameters() if p is emb.weight) == 50 * cfg.encoder_embed_dim
    logits.logsumexp(-1).sum().backward()
    assert emb.weight.grad[30:].abs().sum() > 0  # source-only rows still learn, through the encoder
    # the output layer is the embedding's first 30 rows: changing row 40 cannot move a target score
    # except through the encoder, and with a source without id 40 not at all
    src = torch.randint(4, 40, (2, 5))
    before = model(src, src == 0, tgt).detach()
    with torch.no_grad():
        emb.weight[40:].add_(1.0)
    assert torch.equal(model(src, src == 0, tgt).detach(), before)
    with pytest.raises(UserError, match="target vocabulary within the source one"):
        build_model(cfg, 30, 50, True)


def test_untrimmed_checkpoints_keep_their_parameter_names() -> None:
    cfg = shrink(arch_config("transformer_tiny", {"share_all_embeddings": "true"}))
    names = set(build_model(cfg, 40, 40, True).state_dict())
    assert "decoder.output_projection.weight" in names
    assert "decoder.output_projection.weight" not in set(build_model(cfg, 40, 30, True).state_dict())


def test_preprocess_train_generate_with_a_trimmed_vocabulary(toy_raw_dir, tmp_path, monkeypatch, capsys) -> None:
    data, ck = tmp_path / "bin", tmp_path / "ck"
    code, _, err = cli(
        monkeypatch,
        capsys,
        "preprocess",
        "-s",
        "en",
        "-t",
        "fr",
        "--trainpref",
        str(toy_raw_dir / "train"),
        "--validpref",
        str(toy_raw_dir / "valid"),
        "--testpref",
        str(toy_raw_dir / "test"),
        "--destdir",
        str(data),
        "--vocab-size",
        "300",
        "--joined-dictionary",
        "--trim-target-vocab",
    )
    assert code == 0
    k = read_meta(str(data))["vocab_size"]["fr"]
    assert f"vocabulary: en 300, fr {k} (joined" in err
    code, _, _ = cli(
        monkeypatch,
        capsys,
        "train",
        str(data),
        "--arch",
        "transformer_tiny",
        "--share-all-embeddings",
        "--save-dir",
        str(ck),
        "--max-update",
        "3",
        "--max-tokens",
        "1000",
        "--threads",
        "1",
        *SIZES,
    )
    assert code == 0
    (loaded,) = load_models(str(ck / "checkpoint_last.pt"))
    assert loaded.model.output_weight.shape == (k, 32)
    src = tmp_path / "in.en"
    src.write_text("".join(line + "\n" for line in (toy_raw_dir / "test.en").read_text().splitlines()[:5]))
    code, out, _ = cli(
        monkeypatch,
        capsys,
        "generate",
        "--path",
        str(ck / "checkpoint_last.pt"),
        "--input",
        str(src),
        "--beam",
        "2",
        "--max-len-b",
        "5",
    )
    assert code == 0 and len(out.splitlines()) == 5
