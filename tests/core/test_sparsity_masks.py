"""Block selection: local and global scope, per-op bounds, against NumPy references on random scores."""

import numpy as np
import pytest

from ltp_tf.sparsity.masks import select_blocks
from ltp_tf.sparsity.patterns import parse_pattern


def _layouts(pattern, shapes, seed=0, offsets=None):
    rng = np.random.default_rng(seed)
    offsets = offsets or [0.0] * len(shapes)
    return [parse_pattern(pattern).layout(rng.random(shape) + offset) for shape, offset in zip(shapes, offsets)]


def _sparsity(layout, pruned):
    return pruned.sum() * layout.elements_per_block / layout.num_elements


def test_local_prunes_each_kernel_to_the_rounded_down_target():
    layouts = _layouts("4x1", [(8, 16), (16, 32), (12, 8)])
    pruned = select_blocks(layouts, 0.37, "local", 0.0, 0.98)
    for layout, blocks in zip(layouts, pruned):
        assert blocks.sum() == int(0.37 * layout.num_blocks)
        assert layout.scores[blocks].max() <= layout.scores[~blocks].min()


def test_global_uses_one_threshold_over_all_kernels():
    layouts = _layouts("4x1", [(8, 16), (16, 32), (12, 8)], offsets=[0.0, 0.2, 0.4])
    pruned = select_blocks(layouts, 0.5, "global", 0.0, 0.98)
    total = sum(layout.num_elements for layout in layouts)
    assert sum(p.sum() * 4 for p in pruned) == int(0.5 * total)
    kept_min = min(layout.scores[~p].min() for layout, p in zip(layouts, pruned))
    pruned_max = max(layout.scores[p].max() for layout, p in zip(layouts, pruned) if p.any())
    assert pruned_max <= kept_min
    sparsities = [_sparsity(layout, p) for layout, p in zip(layouts, pruned)]
    assert sparsities[0] > sparsities[1] > sparsities[2]  # low-scoring kernels lose more


def test_global_caps_kernels_at_max_and_gives_the_rest_to_others():
    layouts = _layouts("1x1", [(16, 16), (16, 16), (16, 16)], offsets=[-10.0, 0.0, 0.0])
    pruned = select_blocks(layouts, 0.5, "global", 0.0, 0.7)
    sparsities = [_sparsity(layout, p) for layout, p in zip(layouts, pruned)]
    assert sparsities[0] == pytest.approx(np.floor(0.7 * 256) / 256)
    assert sum(p.sum() for p in pruned) == int(0.5 * 3 * 256)


def test_global_lifts_kernels_to_min():
    layouts = _layouts("1x1", [(16, 16), (16, 16)], offsets=[0.0, 10.0])
    without = select_blocks(layouts, 0.4, "global", 0.0, 0.98)
    assert _sparsity(layouts[1], without[1]) == 0.0
    lifted = select_blocks(layouts, 0.4, "global", 0.25, 0.98)
    assert _sparsity(layouts[1], lifted[1]) == pytest.approx(np.floor(0.25 * 256) / 256)
    assert sum(p.sum() for p in lifted) == int(0.4 * 512)
    # Below the lower bound the schedule's own sparsity is the bound: early events never overshoot.
    early = select_blocks(layouts, 0.1, "global", 0.25, 0.98)
    assert sum(p.sum() for p in early) == int(0.1 * 512)


def test_global_n_in_m_prunes_groups_across_kernels_and_caps_at_n_over_m():
    layouts = _layouts("2:4", [(8, 8), (16, 4)], offsets=[-5.0, 0.0])
    pruned = select_blocks(layouts, 0.4, "global", 0.0, 0.98)
    assert _sparsity(layouts[0], pruned[0]) == 0.5  # capped at N/M, all its groups pruned
    assert sum(p.sum() * 2 for p in pruned) == int(0.4 * 128) // 2 * 2  # whole groups of N=2 zeros


def test_scope_must_be_known():
    with pytest.raises(ValueError, match="`scope` must be one of"):
        select_blocks(_layouts("4x1", [(4, 4)]), 0.5, "layer", 0.0, 0.98)
