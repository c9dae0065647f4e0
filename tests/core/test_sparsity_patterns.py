"""Sparsity patterns: parsing, block scores against NumPy loops, and masks that satisfy their pattern exactly."""

import numpy as np
import pytest

from ltp_tf.sparsity.masks import select_blocks
from ltp_tf.sparsity.patterns import parse_pattern


def _mask(pattern, scores, sparsity):
    layout = parse_pattern(pattern).layout(scores)
    return layout.mask(select_blocks([layout], sparsity, "local", 0.0, 0.99)[0])


@pytest.mark.parametrize("text", ["3:2", "2:2", "0:4", "0x4", "4x0", "channelxchannel", "4*1", "4x", "", "2:4:8"])
def test_invalid_patterns_are_clear_errors(text):
    with pytest.raises(ValueError, match=r"`pattern` must be .*Received: pattern=" + repr(text).replace("*", r"\*")):
        parse_pattern(text)


def test_non_string_pattern_is_an_error():
    with pytest.raises(ValueError, match="Received: pattern=4"):
        parse_pattern(4)


@pytest.mark.parametrize("text, expected", [("4x1", (4, 1, None, None)), ("1xchannel", (1, None, None, None)),
                                            ("channelx1", (None, 1, None, None)), ("2:4", (None, None, 2, 4)),
                                            (" 1X1 ", (1, 1, None, None))])
def test_parse(text, expected):
    p = parse_pattern(text)
    assert (p.out_block, p.in_block, p.n, p.m) == expected


@pytest.mark.parametrize("pattern, n_out, n_in", [("4x1", 4, 1), ("2x8", 2, 8), ("1x1", 1, 1)])
def test_block_mask_is_reference_block_of_out_rows_by_in_columns(pattern, n_out, n_in):
    """In the reference's [out, in] layout (our kernel transposed), every N x M block is all kept or all zero."""
    rng = np.random.default_rng(0)
    scores = rng.random((16, 24))  # Keras (in, out)
    mask = _mask(pattern, scores, 0.6)
    reference = mask.T.reshape(24 // n_out, n_out, 16 // n_in, n_in)
    per_block = reference.sum(axis=(1, 3))
    assert set(np.unique(per_block)) <= {0, n_out * n_in}
    assert abs((mask == 0).mean() - 0.6) < 1.0 / (16 * 24 / (n_out * n_in))


def test_block_scores_are_block_means():
    rng = np.random.default_rng(1)
    scores = rng.random((8, 12))
    layout = parse_pattern("4x2").layout(scores)  # 4 outputs x 2 inputs
    expected = [scores[i:i + 2, j:j + 4].mean() for i in range(0, 8, 2) for j in range(0, 12, 4)]
    np.testing.assert_allclose(layout.scores, expected)
    assert layout.elements_per_block == 8 and layout.num_blocks == 12


@pytest.mark.parametrize("pattern, axis", [("1xchannel", 0), ("channelx1", 1)])
def test_channel_patterns_zero_whole_channels(pattern, axis):
    rng = np.random.default_rng(2)
    scores = rng.random((12, 20))
    mask = _mask(pattern, scores, 0.5)
    per_channel = mask.sum(axis=axis)  # 1xchannel: columns (outputs); channelx1: rows (inputs)
    assert set(np.unique(per_channel)) == {0, mask.shape[axis]}
    # The pruned channels are the ones with the lowest mean score.
    means = scores.mean(axis=axis)
    assert means[per_channel == 0].max() <= means[per_channel > 0].min()


def test_n_in_m_full_sparsity_has_exactly_n_zeros_in_every_group_of_m_inputs():
    rng = np.random.default_rng(3)
    scores = rng.random((16, 6))
    mask = _mask("2:4", scores, 0.5)
    groups = mask.reshape(4, 4, 6)  # (group, input within group, output)
    assert np.all((groups == 0).sum(axis=1) == 2)
    # The zeros are the two lowest scores of each group (NumPy loop reference).
    for g in range(4):
        for j in range(6):
            lowest = np.argsort(scores[4 * g:4 * g + 4, j])[:2]
            assert set(np.flatnonzero(groups[g, :, j] == 0)) == set(lowest)


def test_n_in_m_partial_sparsity_prunes_whole_groups_progressively():
    rng = np.random.default_rng(4)
    scores = rng.random((32, 8))
    layout = parse_pattern("2:4").layout(scores)
    groups = scores.reshape(8, 4, 8)
    expected_scores = np.sort(groups, axis=1)[:, :2, :].mean(axis=1).reshape(-1)
    np.testing.assert_allclose(layout.scores, expected_scores)
    mask = _mask("2:4", scores, 0.3)
    zeros = (mask.reshape(8, 4, 8) == 0).sum(axis=1)
    assert set(np.unique(zeros)) == {0, 2}  # each group: untouched or exactly N zeros
    assert (zeros == 2).sum() == int(0.3 * 32 * 8 / 2)  # 30% of the weights, N per pruned group


def test_shapes_that_do_not_divide_are_reported():
    assert parse_pattern("4x1").check((16, 10)) is not None  # 10 outputs, blocks of 4
    assert parse_pattern("2:4").check((10, 16)) is not None  # 10 inputs, groups of 4
    assert parse_pattern("2:4").check((16, 10)) is None
    with pytest.raises(ValueError, match="does not fit"):
        parse_pattern("4x1").layout(np.zeros((16, 10)))
