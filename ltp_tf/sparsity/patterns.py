"""Sparsity patterns: which weights of a kernel are pruned together.

Conventions. The reference (Intel Neural Compressor, INC) states patterns for PyTorch `Linear` weights stored
`[out, in]`. Keras stores a Dense kernel `(in, out)`, so every pattern here is the reference's transposed:

| pattern       | reference `[out, in]`                     | here, on a Keras kernel `(in, out)`              |
|---------------|-------------------------------------------|--------------------------------------------------|
| `"NxM"`       | N output rows x M input columns           | M consecutive inputs x N consecutive outputs     |
| `"1xchannel"` | one whole output row                      | one whole column `kernel[:, j]` (output j)       |
| `"channelx1"` | one whole input column                    | one whole row `kernel[i, :]` (input i)           |
| `"N:M"`       | N of every M consecutive weights of a row | N of every M consecutive inputs `kernel[m*M:(m+1)*M, j]` |

So `"4x1"` zeroes blocks of 4 consecutive *output* units fed by one input, and `"2:4"` zeroes two of every
four consecutive *input* weights of each output unit — the same grouping as tensorflow-model-optimization's
`sparsity_m_by_n=(2, 4)`, which transposes a Dense kernel to `(out, in)` and groups along its last axis.
`"Nxchannel"` / `"channelxM"` generalise the channel patterns (N outputs x all inputs, all outputs x M inputs).
3-D attention kernels are first viewed as `(in, out)` matrices (`ltp_tf.sparsity.kernels`).

Block scores are the mean of the weight scores in the block (INC's `criterion_reduce_type="mean"`). For
`"N:M"` a group's score is the mean of its N lowest scores, and pruning a group zeroes exactly those N
weights (INC's N:M pattern), so sparsity grows progressively up to N/M as more groups are pruned.
A kernel whose shape does not divide into the pattern is left dense (`Pattern.check` says why).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Callable

import numpy as np

_BLOCK = re.compile(r"^(\d+|channel)x(\d+|channel)$")
_N_IN_M = re.compile(r"^(\d+):(\d+)$")
CHANNEL = "channel"
PATTERN_HELP = ("'NxM' (N output units x M input units, positive integers, or 'channel' on one side, "
                "e.g. '4x1', '1xchannel', 'channelx1') or 'N:M' with 0 < N < M (e.g. '2:4')")


@dataclasses.dataclass(frozen=True)
class BlockLayout:
    """A kernel cut into prunable blocks for one set of scores.

    Attributes:
        scores: `(num_blocks,)` score of each block (lower is pruned first).
        elements_per_block: weights zeroed when one block is pruned.
        num_elements: weights in the kernel.
    """

    scores: np.ndarray
    elements_per_block: int
    num_elements: int
    _expand: Callable[[np.ndarray], np.ndarray]

    @property
    def num_blocks(self) -> int:
        return int(self.scores.shape[0])

    def mask(self, pruned: np.ndarray) -> np.ndarray:
        """The `(in, out)` 0/1 float32 mask that zeroes the blocks where `pruned` (bool, `(num_blocks,)`) is True."""
        return self._expand(np.asarray(pruned, dtype=bool))


@dataclasses.dataclass(frozen=True)
class Pattern:
    """A parsed pattern. Build one with `parse_pattern`.

    Attributes:
        text: the pattern as written.
        out_block, in_block: for block patterns, the block extent along the output and input dimension
            (`None` = the whole channel); both `None` for N:M.
        n, m: for `"N:M"`, N pruned of every M consecutive inputs; both `None` for block patterns.
    """

    text: str
    out_block: int | None = None
    in_block: int | None = None
    n: int | None = None
    m: int | None = None

    @property
    def is_n_in_m(self) -> bool:
        return self.n is not None

    @property
    def max_sparsity(self) -> float:
        """The highest sparsity the pattern can reach: N/M for `"N:M"`, 1 for blocks."""
        return self.n / self.m if self.is_n_in_m else 1.0

    def _block_shape(self, shape: tuple[int, int]) -> tuple[int, int]:
        """(inputs, outputs) covered by one block of an `(in, out)` kernel."""
        return (shape[0] if self.in_block is None else self.in_block,
                shape[1] if self.out_block is None else self.out_block)

    def check(self, shape: tuple[int, int]) -> str | None:
        """Why an `(in, out)` kernel cannot take this pattern, or None when it can."""
        if self.is_n_in_m:
            if shape[0] % self.m:
                return f"its {shape[0]} inputs are not a multiple of M={self.m}"
            return None
        rows, cols = self._block_shape(shape)
        if shape[0] % rows or shape[1] % cols:
            return f"shape (in, out)={tuple(shape)} does not divide into blocks of (in, out)=({rows}, {cols})"
        return None

    def layout(self, scores: np.ndarray) -> BlockLayout:
        """Cuts the `(in, out)` weight scores into blocks (mean-reduced; N:M: mean of the N lowest)."""
        scores = np.asarray(scores, dtype=np.float64)
        reason = self.check(scores.shape)
        if reason is not None:
            raise ValueError(f"Pattern {self.text!r} does not fit this kernel: {reason}.")
        return self._n_in_m_layout(scores) if self.is_n_in_m else self._block_layout(scores)

    def _block_layout(self, scores: np.ndarray) -> BlockLayout:
        n_in, n_out = scores.shape
        rows, cols = self._block_shape(scores.shape)
        grid = (n_in // rows, n_out // cols)
        block_scores = scores.reshape(grid[0], rows, grid[1], cols).mean(axis=(1, 3))

        def expand(pruned: np.ndarray) -> np.ndarray:
            keep = (~pruned.reshape(grid)).astype(np.float32)
            return np.repeat(np.repeat(keep, rows, axis=0), cols, axis=1)

        return BlockLayout(block_scores.reshape(-1), rows * cols, scores.size, expand)

    def _n_in_m_layout(self, scores: np.ndarray) -> BlockLayout:
        n_in, n_out = scores.shape
        groups = scores.reshape(n_in // self.m, self.m, n_out)  # (group, position in group, output)
        # The N lowest scores of each group (stable: on ties the lower input index is pruned first).
        lowest = np.argsort(groups, axis=1, kind="stable")[:, :self.n, :]
        group_scores = np.take_along_axis(groups, lowest, axis=1).mean(axis=1)  # (group, output)

        def expand(pruned: np.ndarray) -> np.ndarray:
            pruned = pruned.reshape(group_scores.shape)
            drop = np.zeros(groups.shape, dtype=bool)
            np.put_along_axis(drop, lowest, np.broadcast_to(pruned[:, None, :], lowest.shape), axis=1)
            return (~drop).reshape(n_in, n_out).astype(np.float32)

        return BlockLayout(group_scores.reshape(-1), self.n, scores.size, expand)


def parse_pattern(pattern: str) -> Pattern:
    """Parses `"NxM"`, `"1xchannel"`, `"channelx1"` or `"N:M"`; anything else is a `ValueError`."""
    text = pattern.strip().lower() if isinstance(pattern, str) else pattern
    error = ValueError(f"`pattern` must be {PATTERN_HELP}. Received: pattern={pattern!r}")
    if not isinstance(text, str):
        raise error
    block = _BLOCK.match(text)
    if block:
        out_block, in_block = (None if part == CHANNEL else int(part) for part in block.groups())
        if (out_block is None and in_block is None) or 0 in (out_block, in_block):
            raise error
        return Pattern(text=text, out_block=out_block, in_block=in_block)
    n_in_m = _N_IN_M.match(text)
    if n_in_m:
        n, m = int(n_in_m.group(1)), int(n_in_m.group(2))
        if not 0 < n < m:
            raise error
        return Pattern(text=text, n=n, m=m)
    raise error
