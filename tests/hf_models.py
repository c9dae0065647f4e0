"""Tiny random encoders written in Hugging Face layout (config.json, model.safetensors, tokenizer files).

Each family's folder holds the weight keys keras_hub's converter for it reads (`keras_hub/src/utils/
transformers/convert_<family>.py`) plus the classifier-head keys a fine-tuned folder has, and that
family's tokenizer files: `vocab.txt` (BERT, DistilBERT), byte-level BPE `vocab.json` + `merges.txt`
(RoBERTa), a SentencePiece model trained here on a few sentences (XLM-RoBERTa's `sentencepiece.bpe.model`,
ALBERT's `spiece.model`). ALBERT's layers (3 by default) share one set of weights; its embeddings are 8 wide.
"""

from __future__ import annotations

import json
import os

import numpy as np

HIDDEN, HEADS, INTERMEDIATE, LAYERS = 16, 2, 32, 2
ALBERT_LAYERS, ALBERT_EMBEDDING = 3, 8
MAX_POSITIONS = 64
WORDS = ("the a movie film is was good bad great awful not very fun boring story acting it this and of to "
         "best worst , . ! ' s n't").split()


def write_hf_model(folder: str, model_type: str, seed: int = 0, activation: str = "gelu",
                   num_layers: int | None = None) -> str:
    """Writes a tiny random `model_type` model (hidden 16; `num_layers`, by default 2, ALBERT 3) into `folder`
    and returns it."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    vocab_size = _WRITE_TOKENIZER[model_type](folder)
    layers = num_layers or (ALBERT_LAYERS if model_type == "albert" else LAYERS)
    config, tensors = _MODELS[model_type](rng, vocab_size, activation, layers)
    config.update({"model_type": model_type, "vocab_size": vocab_size})
    with open(os.path.join(folder, "config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f)
    from safetensors.numpy import save_file

    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()},
              os.path.join(folder, "model.safetensors"))
    return folder


def _normal(rng, *shape, scale=0.2):
    return rng.normal(0.0, scale, size=shape)


def _linear(rng, tensors, key, out_dim, in_dim):
    tensors[f"{key}.weight"] = _normal(rng, out_dim, in_dim)  # torch layout (out, in)
    tensors[f"{key}.bias"] = _normal(rng, out_dim, scale=0.05)


def _norm(rng, tensors, key, dim=HIDDEN):
    tensors[f"{key}.weight"] = 1.0 + _normal(rng, dim, scale=0.05)
    tensors[f"{key}.bias"] = _normal(rng, dim, scale=0.05)


def _bert_like(rng, vocab_size, activation, layers, prefix, positions):
    tensors = {f"{prefix}embeddings.word_embeddings.weight": _normal(rng, vocab_size, HIDDEN),
               f"{prefix}embeddings.position_embeddings.weight": _normal(rng, positions, HIDDEN),
               f"{prefix}embeddings.token_type_embeddings.weight": _normal(rng, 2 if prefix == "bert." else 1, HIDDEN)}
    _norm(rng, tensors, f"{prefix}embeddings.LayerNorm")
    for i in range(layers):
        layer = f"{prefix}encoder.layer.{i}"
        for name in ("query", "key", "value"):
            _linear(rng, tensors, f"{layer}.attention.self.{name}", HIDDEN, HIDDEN)
        _linear(rng, tensors, f"{layer}.attention.output.dense", HIDDEN, HIDDEN)
        _norm(rng, tensors, f"{layer}.attention.output.LayerNorm")
        _linear(rng, tensors, f"{layer}.intermediate.dense", INTERMEDIATE, HIDDEN)
        _linear(rng, tensors, f"{layer}.output.dense", HIDDEN, INTERMEDIATE)
        _norm(rng, tensors, f"{layer}.output.LayerNorm")
    config = {"hidden_size": HIDDEN, "num_hidden_layers": layers, "num_attention_heads": HEADS,
              "intermediate_size": INTERMEDIATE, "hidden_act": activation, "hidden_dropout_prob": 0.1,
              "attention_probs_dropout_prob": 0.1, "max_position_embeddings": positions}
    return config, tensors


def _bert(rng, vocab_size, activation, layers):
    config, tensors = _bert_like(rng, vocab_size, activation, layers, "bert.", MAX_POSITIONS)
    _linear(rng, tensors, "bert.pooler.dense", HIDDEN, HIDDEN)
    config.update({"type_vocab_size": 2, "layer_norm_eps": 1e-12})
    return config, tensors


def _roberta(rng, vocab_size, activation, layers):
    # RoBERTa reserves position rows 0 and 1 (padding_idx + 1): 2 + MAX_POSITIONS rows.
    config, tensors = _bert_like(rng, vocab_size, activation, layers, "roberta.", MAX_POSITIONS + 2)
    _linear(rng, tensors, "classifier.dense", HIDDEN, HIDDEN)  # a fine-tuned classification head
    _linear(rng, tensors, "classifier.out_proj", 2, HIDDEN)
    config.update({"type_vocab_size": 1, "layer_norm_eps": 1e-5, "pad_token_id": 1})
    return config, tensors


def _distilbert(rng, vocab_size, activation, layers):
    tensors = {"distilbert.embeddings.word_embeddings.weight": _normal(rng, vocab_size, HIDDEN),
               "distilbert.embeddings.position_embeddings.weight": _normal(rng, MAX_POSITIONS, HIDDEN)}
    _norm(rng, tensors, "distilbert.embeddings.LayerNorm")
    for i in range(layers):
        layer = f"distilbert.transformer.layer.{i}"
        for name in ("q_lin", "k_lin", "v_lin", "out_lin"):
            _linear(rng, tensors, f"{layer}.attention.{name}", HIDDEN, HIDDEN)
        _norm(rng, tensors, f"{layer}.sa_layer_norm")
        _linear(rng, tensors, f"{layer}.ffn.lin1", INTERMEDIATE, HIDDEN)
        _linear(rng, tensors, f"{layer}.ffn.lin2", HIDDEN, INTERMEDIATE)
        _norm(rng, tensors, f"{layer}.output_layer_norm")
    _linear(rng, tensors, "pre_classifier", HIDDEN, HIDDEN)
    _linear(rng, tensors, "classifier", 2, HIDDEN)
    config = {"dim": HIDDEN, "n_layers": layers, "n_heads": HEADS, "hidden_dim": INTERMEDIATE,
              "activation": activation, "dropout": 0.1, "attention_dropout": 0.1,
              "max_position_embeddings": MAX_POSITIONS}
    return config, tensors


def _albert(rng, vocab_size, activation, layers):
    tensors = {"albert.embeddings.word_embeddings.weight": _normal(rng, vocab_size, ALBERT_EMBEDDING),
               "albert.embeddings.position_embeddings.weight": _normal(rng, MAX_POSITIONS, ALBERT_EMBEDDING),
               "albert.embeddings.token_type_embeddings.weight": _normal(rng, 2, ALBERT_EMBEDDING)}
    _norm(rng, tensors, "albert.embeddings.LayerNorm", ALBERT_EMBEDDING)
    _linear(rng, tensors, "albert.encoder.embedding_hidden_mapping_in", HIDDEN, ALBERT_EMBEDDING)
    layer = "albert.encoder.albert_layer_groups.0.albert_layers.0"  # the one layer all `layers` share
    for name in ("query", "key", "value", "dense"):
        _linear(rng, tensors, f"{layer}.attention.{name}", HIDDEN, HIDDEN)
    _norm(rng, tensors, f"{layer}.attention.LayerNorm")
    _linear(rng, tensors, f"{layer}.ffn", INTERMEDIATE, HIDDEN)
    _linear(rng, tensors, f"{layer}.ffn_output", HIDDEN, INTERMEDIATE)
    _norm(rng, tensors, f"{layer}.full_layer_layer_norm")
    _linear(rng, tensors, "albert.pooler", HIDDEN, HIDDEN)
    _linear(rng, tensors, "classifier", 2, HIDDEN)
    config = {"embedding_size": ALBERT_EMBEDDING, "hidden_size": HIDDEN, "num_hidden_layers": layers,
              "num_attention_heads": HEADS, "intermediate_size": INTERMEDIATE, "num_hidden_groups": 1,
              "inner_group_num": 1, "hidden_act": activation, "hidden_dropout_prob": 0.0,
              "attention_probs_dropout_prob": 0.0, "max_position_embeddings": MAX_POSITIONS, "type_vocab_size": 2,
              "layer_norm_eps": 1e-12}
    return config, tensors


_MODELS = {"bert": _bert, "roberta": _roberta, "xlm-roberta": _roberta, "distilbert": _distilbert,
           "albert": _albert}


# ------------------------------------------------------------------ tokenizers
def _write_wordpiece(folder: str) -> int:
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(WORDS) + [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"]
    vocab += [c for c in "abcdefghijklmnopqrstuvwxyz0123456789" if c not in vocab]
    with open(os.path.join(folder, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(vocab) + "\n")
    with open(os.path.join(folder, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump({"do_lower_case": True}, f)
    return len(vocab)


def _byte_symbols() -> list[str]:
    """GPT-2's printable stand-ins for the 256 bytes (byte-level BPE's base alphabet)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    symbols, extra = [], 0
    for byte in range(256):
        if byte in printable:
            symbols.append(chr(byte))
        else:
            symbols.append(chr(256 + extra))
            extra += 1
    return symbols


def _write_bpe(folder: str) -> int:
    merges = ["Ġ t", "h e", "Ġt he", "Ġ a", "Ġ m", "o v", "Ġm ov", "i e", "Ġmov ie", "Ġ g", "o o", "Ġg oo", "Ġgoo d"]
    tokens = ["<s>", "<pad>", "</s>", "<unk>"] + _byte_symbols() + ["".join(m.split()) for m in merges] + ["<mask>"]
    with open(os.path.join(folder, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({token: i for i, token in enumerate(tokens)}, f, ensure_ascii=False)
    with open(os.path.join(folder, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(merges) + "\n")
    return len(tokens)


def _train_sentencepiece(path: str, **special_ids) -> None:
    import io

    import sentencepiece as spm

    sentences = [" ".join(np.random.default_rng(i).choice(WORDS, size=8)) for i in range(200)]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(sentences), model_writer=model, vocab_size=60,
                                   model_type="bpe", character_coverage=1.0, minloglevel=2, **special_ids)
    with open(path, "wb") as f:
        f.write(model.getvalue())


def _write_sentencepiece(folder: str) -> int:
    _train_sentencepiece(os.path.join(folder, "sentencepiece.bpe.model"), unk_id=0, bos_id=1, eos_id=2, pad_id=-1)
    return 60 + 2  # fairseq ids: <s>, <pad>, </s>, <unk> first (one past the model's), <mask> last


def _write_albert_sentencepiece(folder: str) -> int:
    # ALBERT's ids are the model's own: <pad> 0, <unk> 1, [CLS] 2, [SEP] 3, [MASK] 4.
    _train_sentencepiece(os.path.join(folder, "spiece.model"), pad_id=0, unk_id=1, bos_id=2, eos_id=3,
                         pad_piece="<pad>", unk_piece="<unk>", bos_piece="[CLS]", eos_piece="[SEP]",
                         user_defined_symbols="[MASK]")
    return 60


_WRITE_TOKENIZER = {"bert": _write_wordpiece, "distilbert": _write_wordpiece, "roberta": _write_bpe,
                    "xlm-roberta": _write_sentencepiece, "albert": _write_albert_sentencepiece}
