"""The sparsity report counts what the kernels hold, before and after `strip`."""

import keras
import numpy as np

from ltp_tf import TokenPruningBackbone, TokenPruningClassifier
from ltp_tf.sparsity import UpdateWeightPruning, WeightPruningGroup, prune, sparsity_report, strip


def test_report_counts_zeros_parameters_and_flops():
    backbone = TokenPruningBackbone(vocabulary_size=40, num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32,
                                    max_sequence_length=8, dropout=0.0)
    model = TokenPruningClassifier(backbone, 2, dropout=0.0)
    rng = np.random.default_rng(0)
    x = {"token_ids": rng.integers(1, 40, size=(8, 6)).astype("int32")}
    model(x)
    prune(model, WeightPruningGroup(pattern="4x1", target_sparsity=0.6, pruning_type="magnitude", start_step=1,
                                    end_step=1, excluded_op_names=("pooled_dense",)))
    model.compile(optimizer=keras.optimizers.SGD(0.01), jit_compile=False,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, np.zeros(8, "int32"), batch_size=8, epochs=1, verbose=0, callbacks=[UpdateWeightPruning()])

    report = sparsity_report(model)
    kernels = {k.path.split("/", 1)[1]: k for k in report.kernels}  # without the model's (numbered) name
    assert len(kernels) == 8  # q, k, v, attention output, two feed-forward, pooler, classifier
    for variable in model.weights:
        path = variable.path.split("/", 1)[1]
        if path in kernels:
            values = np.asarray(keras.ops.convert_to_numpy(variable))
            assert kernels[path].num_zeros == int((values == 0).sum())
            assert kernels[path].num_weights == values.size
    assert kernels["logits/kernel"].status.startswith("skipped: pattern '4x1' does not fit")
    assert [k.status for p, k in kernels.items() if p.endswith("pooled_dense/kernel")] == ["dense"]
    pruned = [k for k in report.kernels if k.status == "pruned"]
    assert len(pruned) == 6 and sum(k.num_zeros for k in pruned) == int(0.6 * sum(k.num_weights for k in pruned))
    weights = sum(k.num_weights for k in report.kernels)
    zeros = sum(k.num_zeros for k in report.kernels)
    assert report.dense_matmul_flops_per_token == 2 * weights
    assert report.sparse_matmul_flops_per_token == 2 * (weights - zeros)
    masks = sum(np.prod(k.shape) for k in pruned)
    assert report.num_parameters == sum(np.prod(w.shape) for w in model.weights) - masks
    assert f"pruned kernels: {report.pruned_sparsity:.4f}" in report.format_table()

    strip(model)
    stripped = sparsity_report(model)
    assert stripped.kernel_zeros == report.kernel_zeros and stripped.pruned_sparsity == report.pruned_sparsity
    assert {k.status for k in stripped.kernels} == {"sparse", "dense"}
    assert stripped.to_dict()["num_nonzero_parameters"] == report.num_parameters - report.num_parameter_zeros
