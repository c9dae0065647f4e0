"""Choosing which blocks to prune for a target sparsity (NumPy, on the host, at pruning events only).

Sparsity counts weights: a kernel's sparsity is its zeroed weights over its weights, a group's is the sum over
its kernels. With equal block sizes this is INC's block count; it differs only for channel patterns across
kernels of different widths, where weights (not channels) are what a parameter or FLOP count sees.

- `local` scope: each kernel prunes its lowest-scoring blocks up to `min(s, max_per_op)`.
- `global` scope: one ranking over all blocks of the group; the lowest-scoring blocks are pruned until the group
  reaches s. A kernel whose share would exceed `max_per_op` is fixed at `max_per_op`, one below
  `min(min_per_op, s)` is fixed there, and the remaining blocks are ranked again for what is left (INC's
  `get_masks_global` loop, extended to the lower bound).

For `"N:M"` the per-kernel cap is also N/M. Ties in scores prune the earlier kernel and block first, so masks are
deterministic. Counts are rounded down: a group never exceeds the requested sparsity by rounding.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ltp_tf.sparsity.patterns import BlockLayout
from ltp_tf.validation import check_one_of

_EPS = 1e-9


def select_blocks(layouts: Sequence[BlockLayout], sparsity: float, scope: str, min_per_op: float,
                  max_per_op: float) -> list[np.ndarray]:
    """Per layout, a bool `(num_blocks,)` array of the blocks to prune."""
    upper = [min(max_per_op, _max_fraction(layout)) for layout in layouts]
    check_one_of("scope", scope, ("global", "local"))
    if scope == "local":
        return [_lowest(layout.scores, _blocks_for(layout, min(sparsity, cap))) for layout, cap in zip(layouts, upper)]
    lower = min(min_per_op, sparsity)
    budget = math.floor(sparsity * sum(layout.num_elements for layout in layouts) + _EPS)
    fixed: dict[int, int] = {}  # layout index -> number of pruned blocks
    while True:
        free = [i for i in range(len(layouts)) if i not in fixed]
        left = budget - sum(fixed[i] * layouts[i].elements_per_block for i in fixed)
        counts = _global_counts([layouts[i] for i in free], left)
        over = [i for i, c in zip(free, counts) if c > _blocks_for(layouts[i], upper[i])]
        under = [i for i, c in zip(free, counts) if c < _blocks_for(layouts[i], min(lower, upper[i]))]
        if over:
            fixed.update({i: _blocks_for(layouts[i], upper[i]) for i in over})
        elif under:
            fixed.update({i: _blocks_for(layouts[i], min(lower, upper[i])) for i in under})
        else:
            fixed.update(dict(zip(free, counts)))
            break
        if len(fixed) == len(layouts):
            break
    return [_lowest(layout.scores, fixed[i]) for i, layout in enumerate(layouts)]


def _max_fraction(layout: BlockLayout) -> float:
    return layout.num_blocks * layout.elements_per_block / layout.num_elements


def _blocks_for(layout: BlockLayout, fraction: float) -> int:
    """Blocks to prune for `fraction` of the layout's weights, rounded down."""
    count = math.floor(fraction * layout.num_elements / layout.elements_per_block + _EPS)
    return min(max(count, 0), layout.num_blocks)


def _global_counts(layouts: Sequence[BlockLayout], elements: int) -> list[int]:
    """Blocks per layout when the lowest-scoring blocks over all layouts are pruned, up to `elements` weights."""
    if not layouts or elements <= 0:
        return [0] * len(layouts)
    scores = np.concatenate([layout.scores for layout in layouts])
    owner = np.concatenate([np.full(layout.num_blocks, i) for i, layout in enumerate(layouts)])
    sizes = np.array([layout.elements_per_block for layout in layouts])[owner]
    order = np.argsort(scores, kind="stable")
    taken = order[:int(np.searchsorted(np.cumsum(sizes[order]), elements, side="right"))]
    return [int(c) for c in np.bincount(owner[taken], minlength=len(layouts))]


def _lowest(scores: np.ndarray, count: int) -> np.ndarray:
    pruned = np.zeros(scores.shape[0], dtype=bool)
    pruned[np.argsort(scores, kind="stable")[:count]] = True
    return pruned
