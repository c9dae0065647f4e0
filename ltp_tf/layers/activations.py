"""Activations by the names Hugging Face `config.json` files use (`hidden_act`)."""

from __future__ import annotations

import keras

from ltp_tf.validation import check_one_of


@keras.saving.register_keras_serializable(package="ltp_tf")
def gelu_approximate(x):
    """tanh-approximated GELU (Hugging Face `gelu_new` / `gelu_pytorch_tanh`)."""
    return keras.activations.gelu(x, approximate=True)


@keras.saving.register_keras_serializable(package="ltp_tf")
def gelu_exact(x):
    """Exact (erf) GELU, what BERT checkpoints were trained with (Hugging Face `gelu`)."""
    return keras.activations.gelu(x, approximate=False)


_HF_ACTIVATIONS = {
    "gelu": "gelu_exact",
    "gelu_new": "gelu_approximate",
    "gelu_pytorch_tanh": "gelu_approximate",
    "gelu_fast": "gelu_approximate",
    "relu": "relu",
    "silu": "silu",
    "swish": "silu",
    "tanh": "tanh",
}

_BY_NAME = {"gelu_exact": gelu_exact, "gelu_approximate": gelu_approximate}


def activation_from_hf(hidden_act: str) -> str:
    """Maps a Hugging Face `hidden_act` to the name `get_activation` understands."""
    check_one_of("hidden_act", hidden_act, sorted(_HF_ACTIVATIONS))
    return _HF_ACTIVATIONS[hidden_act]


def get_activation(name: str):
    """The activation callable for a name: ours (`gelu_exact`, `gelu_approximate`) or any Keras name."""
    if name in _BY_NAME:
        return _BY_NAME[name]
    try:
        return keras.activations.get(name)
    except ValueError as error:
        raise ValueError(f"`activation` must be 'gelu_exact', 'gelu_approximate' or a Keras activation name. "
                         f"Received: activation={name!r}") from error
