"""Which weights can be pruned, and how each is seen as an `(in, out)` matrix.

Prunable kernels are the `kernel` variables of `keras.layers.Dense` and `keras.layers.EinsumDense` layers
(the reference prunes only `Linear` layers; Keras' `MultiHeadAttention` projections are `EinsumDense`).

An `EinsumDense` kernel is viewed as a matrix by splitting its axes by the equation: kernel axes that also
appear in the output are output axes, the others are contracted with the input (input axes). The view
transposes to `(input axes..., output axes...)` and flattens each group in C order. For BERT attention:

- query/key/value, equation `abc,cde->abde`, kernel `(hidden, heads, head_dim)` -> `(hidden, heads*head_dim)`:
  output unit `h * head_dim + d` is unit `d` of head `h`, so `"4x1"` blocks never straddle two heads when
  4 divides `head_dim`;
- attention output, equation `abcd,cde->abe`, kernel `(heads, head_dim, hidden)` -> `(heads*head_dim, hidden)`.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np


@dataclasses.dataclass(frozen=True)
class KernelView:
    """How a kernel of shape `shape` maps to an `(in_dim, out_dim)` matrix (`permutation` first, then reshape)."""

    shape: tuple[int, ...]
    permutation: tuple[int, ...]
    in_dim: int
    out_dim: int

    def to_matrix(self, array: np.ndarray) -> np.ndarray:
        return np.transpose(np.asarray(array), self.permutation).reshape(self.in_dim, self.out_dim)

    def from_matrix(self, matrix: np.ndarray) -> np.ndarray:
        permuted_shape = tuple(self.shape[axis] for axis in self.permutation)
        return np.transpose(np.asarray(matrix).reshape(permuted_shape), np.argsort(self.permutation))


@dataclasses.dataclass(frozen=True)
class PrunableKernel:
    """A kernel variable, the layer that owns it, and its matrix view."""

    layer: keras.layers.Layer
    variable: keras.Variable
    view: KernelView

    @property
    def path(self) -> str:
        return self.variable.path


def einsum_kernel_view(equation: str, shape: tuple[int, ...]) -> KernelView:
    """The `(in, out)` view of an `EinsumDense` kernel from its equation, e.g. `"abc,cde->abde"`."""
    inputs, output = equation.replace(".", "").split("->")
    kernel_axes = inputs.split(",")[1]
    input_axes = inputs.split(",")[0]
    if len(kernel_axes) != len(shape):
        raise ValueError(f"EinsumDense equation {equation!r} does not match kernel shape {tuple(shape)}.")
    shared = [a for a in kernel_axes if a in output and a in input_axes]
    if shared:
        raise ValueError(f"EinsumDense equation {equation!r} broadcasts kernel axes {shared} over the input: "
                         "it is not one matrix product, so it has no (in, out) view.")
    in_axes = [i for i, a in enumerate(kernel_axes) if a not in output]
    out_axes = [i for i, a in enumerate(kernel_axes) if a in output]
    return KernelView(shape=tuple(shape), permutation=tuple(in_axes + out_axes),
                      in_dim=int(np.prod([shape[i] for i in in_axes], dtype=np.int64)),
                      out_dim=int(np.prod([shape[i] for i in out_axes], dtype=np.int64)))


def prunable_kernels(model: keras.Model) -> list[PrunableKernel]:
    """Every Dense / EinsumDense kernel variable of `model` (a built model), in variable order."""
    if not model.built:
        raise ValueError(f"Model {model.name!r} must be built before pruning: call it once on a batch.")
    found = {}
    for layer in model._flatten_layers(include_self=True):
        if isinstance(layer, (keras.layers.Dense, keras.layers.EinsumDense)) and layer.built:
            kernel = layer.kernel
            if not isinstance(kernel, keras.Variable):  # LoRA-enabled or quantized: not a plain variable.
                continue
            shape = tuple(kernel.shape)
            if isinstance(layer, keras.layers.Dense):
                view = KernelView(shape=shape, permutation=(0, 1), in_dim=shape[0], out_dim=shape[1])
            else:
                try:
                    view = einsum_kernel_view(layer.equation, shape)
                except ValueError:
                    continue
            found[id(kernel)] = PrunableKernel(layer=layer, variable=kernel, view=view)
    order = {id(v): i for i, v in enumerate(model.weights)}
    return sorted(found.values(), key=lambda k: order.get(id(k.variable), len(order)))
