import numpy as np
import pytest

from ltp_tf.flops import count_flops, layer_flops


def test_layer_flops_is_ltp_formula_for_4x_ffn():
    d, n_in, n_out = 768, 100, 60
    macs = 2 * d * n_in**2 + 4 * d**2 * n_in + 8 * d**2 * n_out
    assert layer_flops(d, 4 * d, n_in, n_out) == pytest.approx(2 * macs)


def test_count_flops_against_hand_sum():
    lengths = np.array([10, 6])
    kept = np.array([[10, 8, 4], [6, 6, 2]])
    report = count_flops(8, 32, lengths, kept)
    expected = []
    for i in range(3):
        n_in = lengths if i == 0 else kept[:, i - 1]
        expected.append(sum(2 * (2 * 8 * a**2 + 4 * 64 * a + 2 * 8 * 32 * b) for a, b in zip(n_in, kept[:, i])))
    assert report.per_layer == pytest.approx(expected)
    dense = 3 * sum(2 * (2 * 8 * n**2 + 4 * 64 * n + 2 * 8 * 32 * n) for n in lengths)
    assert report.dense_total == pytest.approx(dense)
    assert report.reduction == pytest.approx(dense / sum(expected)) and report.reduction > 1


def test_unpruned_reduction_is_one():
    lengths = np.array([5, 9])
    assert count_flops(16, 64, lengths, np.stack([lengths] * 4, 1)).reduction == pytest.approx(1.0)


def test_bad_shapes_and_empty_batch():
    with pytest.raises(ValueError, match="`sequence_lengths` must be \\(batch,\\)"):
        count_flops(8, 32, np.array([3, 4]), np.array([3, 4]))
    with pytest.raises(ValueError, match="empty batch"):
        count_flops(8, 32, np.zeros((0,)), np.zeros((0, 2)))


def test_weight_density_scales_only_the_weight_macs():
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 40, size=5)
    kept = np.minimum(lengths[:, None], rng.integers(1, 40, size=(5, 4)))
    d, d_ff, density = 16, 64, 0.5
    report = count_flops(d, d_ff, lengths, kept, weight_density=density)
    tokens_in = np.concatenate([lengths[:, None], kept[:, :-1]], axis=1)
    attention = 2 * 2 * d * (tokens_in**2).sum(axis=0)
    weights = 2 * (4 * d**2 * tokens_in + 2 * d * d_ff * kept).sum(axis=0)
    np.testing.assert_allclose(report.per_layer, attention + density * weights)
    assert report.dense_total == pytest.approx(count_flops(d, d_ff, lengths, kept).dense_total)
    unpruned = count_flops(d, d_ff, lengths, np.stack([lengths] * 4, 1), weight_density=density)
    assert 1.0 < unpruned.reduction < 1.0 / density  # attention MACs do not shrink with the weights


@pytest.mark.parametrize("density", [0.0, 1.5, -0.1, True])
def test_weight_density_out_of_range_is_an_error(density):
    with pytest.raises(ValueError, match="`weight_density` must be a number in \\(0, 1\\]. Received"):
        count_flops(8, 32, np.array([4]), np.array([[4, 4]]), weight_density=density)
