"""Encoder families: what differs between BERT, RoBERTa, XLM-RoBERTa, DistilBERT and ALBERT around the pruning blocks.

A family is named by the `model_type` of a Hugging Face `config.json`. It decides the embeddings (separate
token/position/segment tables for BERT and ALBERT, ALBERT's narrower and projected to the hidden size;
keras_hub's `TokenAndPositionEmbedding` and no segment table for the others), whether the blocks share one
set of weights (ALBERT), the pooling layer (BERT's and ALBERT's tanh pooler; RoBERTa's `<s>` + dense/tanh
classification head; DistilBERT's ReLU pre-classifier), the config keys holding the activation and LayerNorm
epsilon, and the keras_hub classes that convert the weights and tokenize text. The encoder blocks, and so
token pruning (one threshold per layer, shared weights or not), are the same for every family. This module
imports nothing heavy: keras_hub classes are named, not loaded.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class EncoderFamily:
    """How one family of checkpoints maps onto a `TokenPruningBackbone`.

    Attributes:
        model_type: the `model_type` of its Hugging Face `config.json`.
        embeddings_name: name of keras_hub's `TokenAndPositionEmbedding` layer in the family's keras_hub
            backbone, or None for BERT's separate token/position/segment tables.
        has_segments: whether the family has segment (token type) embeddings.
        pooler_activation: activation of the dense layer on the first token (`pooled_dense`).
        pooler_keys: safetensors key prefixes (without `.weight`/`.bias`) of that dense layer in a Hugging
            Face checkpoint, tried in order; BERT's pooler comes with keras_hub's backbone instead.
        activation_key: the `config.json` key of the feed-forward activation.
        default_activation: the Hugging Face activation name when the key is absent.
        default_layer_norm_epsilon: LayerNorm epsilon when `config.json` has no `layer_norm_eps`.
        hub_backbone, hub_tokenizer, hub_preprocessor: keras_hub class names (`keras_hub.models.<name>`).
        tokenizer_files: the tokenizer files a Hugging Face folder of this family holds.
        factorized_embeddings: the embeddings are `embedding_dim` wide and a dense layer
            (`embedding_projection`) maps them to the hidden size (ALBERT).
        shares_layer_weights: every block uses the first block's weights (ALBERT with one layer group);
            each block keeps its own pruning threshold.
    """

    model_type: str
    embeddings_name: str | None
    has_segments: bool
    pooler_activation: str
    pooler_keys: tuple[str, ...]
    activation_key: str
    default_activation: str
    default_layer_norm_epsilon: float
    hub_backbone: str
    hub_tokenizer: str
    hub_preprocessor: str
    tokenizer_files: tuple[str, ...]
    factorized_embeddings: bool = False
    shares_layer_weights: bool = False


FAMILIES: dict[str, EncoderFamily] = {
    family.model_type: family for family in (
        EncoderFamily("bert", None, True, "tanh", (), "hidden_act", "gelu", 1e-12, "BertBackbone",
                      "BertTokenizer", "BertTextClassifierPreprocessor", ("vocab.txt",)),
        EncoderFamily("roberta", "embeddings", False, "tanh", ("classifier.dense",), "hidden_act", "gelu", 1e-5,
                      "RobertaBackbone", "RobertaTokenizer", "RobertaTextClassifierPreprocessor",
                      ("vocab.json", "merges.txt")),
        EncoderFamily("xlm-roberta", "embeddings", False, "tanh", ("classifier.dense",), "hidden_act", "gelu", 1e-5,
                      "XLMRobertaBackbone", "XLMRobertaTokenizer", "XLMRobertaTextClassifierPreprocessor",
                      ("sentencepiece.bpe.model",)),
        EncoderFamily("distilbert", "token_and_position_embedding", False, "relu", ("pre_classifier",), "activation",
                      "gelu", 1e-12, "DistilBertBackbone", "DistilBertTokenizer",
                      "DistilBertTextClassifierPreprocessor", ("vocab.txt",)),
        EncoderFamily("albert", None, True, "tanh", (), "hidden_act", "gelu_new", 1e-12, "AlbertBackbone",
                      "AlbertTokenizer", "AlbertTextClassifierPreprocessor", ("spiece.model",),
                      factorized_embeddings=True, shares_layer_weights=True),
    )
}


def get_family(model_type: str) -> EncoderFamily:
    """The family of a `config.json` `model_type`; a clear error for decoders, DeBERTa and the like."""
    key = model_type.replace("_", "-") if isinstance(model_type, str) else model_type
    if key not in FAMILIES:
        raise ValueError(f"Unsupported model_type={model_type!r}: token pruning needs one of the encoder families "
                         f"{sorted(FAMILIES)} (decoders and relative-attention encoders such as DeBERTa are not "
                         "supported).")
    return FAMILIES[key]
