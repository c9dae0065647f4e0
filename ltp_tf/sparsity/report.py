"""Per-kernel sparsity report: zeros, parameters and matmul FLOPs, of a pruned or a stripped model.

Counting is honest about what zeros buy: every Dense / EinsumDense kernel is listed with its zeros; the
"sparse" matmul FLOPs (2 x non-zero weights per token) are what a runtime that skips zeros would execute, the
dense ones (2 x weights per token) what TensorFlow, XLA and JAX execute on these kernels (they store and
multiply the zeros). Attention score FLOPs do not depend on weights and are not counted here.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import keras

from ltp_tf.sparsity.kernels import prunable_kernels
from ltp_tf.sparsity.pruning import find_plan


@dataclasses.dataclass(frozen=True)
class KernelSparsity:
    """One kernel: variable path, shape, pattern (None when not pruned), status and counts."""

    path: str
    shape: tuple[int, ...]
    pattern: str | None
    status: str  # "pruned" (has a mask), "sparse" (no mask, has zeros), "skipped: <reason>", or "dense"
    num_weights: int
    num_zeros: int

    @property
    def sparsity(self) -> float:
        return self.num_zeros / self.num_weights


@dataclasses.dataclass(frozen=True)
class SparsityReport:
    """Rows per kernel plus totals over all kernels and over all of the model's parameters."""

    kernels: tuple[KernelSparsity, ...]
    num_parameters: int
    num_parameter_zeros: int

    @property
    def kernel_weights(self) -> int:
        return sum(k.num_weights for k in self.kernels)

    @property
    def kernel_zeros(self) -> int:
        return sum(k.num_zeros for k in self.kernels)

    @property
    def kernel_sparsity(self) -> float:
        """Zeros over all Dense / EinsumDense kernel weights (INC's "element-wise over matmul" ratio)."""
        return self.kernel_zeros / self.kernel_weights

    @property
    def pruned_sparsity(self) -> float:
        """Zeros over the weights of the kernels that are pruned (or, stripped, that have any zero)."""
        rows = [k for k in self.kernels if k.status in ("pruned", "sparse")]
        return sum(k.num_zeros for k in rows) / max(sum(k.num_weights for k in rows), 1)

    @property
    def dense_matmul_flops_per_token(self) -> int:
        return 2 * self.kernel_weights

    @property
    def sparse_matmul_flops_per_token(self) -> int:
        return 2 * (self.kernel_weights - self.kernel_zeros)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kernels": [{**dataclasses.asdict(k), "sparsity": k.sparsity} for k in self.kernels],
            "kernel_sparsity": self.kernel_sparsity,
            "pruned_sparsity": self.pruned_sparsity,
            "num_parameters": self.num_parameters,
            "num_nonzero_parameters": self.num_parameters - self.num_parameter_zeros,
            "dense_matmul_flops_per_token": self.dense_matmul_flops_per_token,
            "sparse_matmul_flops_per_token": self.sparse_matmul_flops_per_token,
        }

    def format_table(self) -> str:
        width = max(len(k.path) for k in self.kernels)
        lines = [f"{'kernel':<{width}}  {'shape':<16} {'pattern':<10} {'sparsity':>8}  status"]
        for k in self.kernels:
            lines.append(f"{k.path:<{width}}  {str(k.shape):<16} {k.pattern or '-':<10} {k.sparsity:>8.4f}  {k.status}")
        lines.append(f"kernels: {self.kernel_zeros}/{self.kernel_weights} zero ({self.kernel_sparsity:.4f}); "
                     f"pruned kernels: {self.pruned_sparsity:.4f}; parameters: "
                     f"{self.num_parameters - self.num_parameter_zeros}/{self.num_parameters} non-zero; matmul "
                     f"FLOPs/token dense {self.dense_matmul_flops_per_token}, sparse "
                     f"{self.sparse_matmul_flops_per_token}")
        return "\n".join(lines)


def sparsity_report(model: keras.Model) -> SparsityReport:
    """The report of `model`: a pruned model reports its plan; a stripped one, the zeros in its kernels."""
    plan = find_plan(model, required=False)
    pruned = {id(k.kernel.variable): plan.configs[k.config_index].pattern for k in plan.kernels} if plan else {}
    skipped = {s.path: s.reason for s in plan.skipped} if plan else {}
    rows = []
    for kernel in prunable_kernels(model):
        values = keras.ops.convert_to_numpy(kernel.variable)
        zeros = int((values == 0).sum())
        if id(kernel.variable) in pruned:
            pattern, status = pruned[id(kernel.variable)], "pruned"
        elif kernel.path in skipped:
            pattern, status = None, f"skipped: {skipped[kernel.path]}"
        else:
            pattern, status = None, "sparse" if plan is None and zeros else "dense"
        rows.append(KernelSparsity(kernel.path, tuple(values.shape), pattern, status, int(values.size), zeros))
    masks = {id(k.mask) for k in plan.kernels} if plan else set()
    parameters = [keras.ops.convert_to_numpy(v) for v in model.weights if id(v) not in masks]
    return SparsityReport(kernels=tuple(rows), num_parameters=int(sum(p.size for p in parameters)),
                          num_parameter_zeros=int(sum((p == 0).sum() for p in parameters)))
