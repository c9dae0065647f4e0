"""`ltp_tf.benchmarking.results`: the dense twin, the result rows and their files (with the plots)."""

import os

import keras
import numpy as np

from ltp_tf import TokenPruningBackbone, TokenPruningClassifier, TokenPruningConfig
from ltp_tf.benchmarking import results


def _pruned_model():
    config = TokenPruningConfig(prune_mode="absolute_threshold", final_token_threshold=0.3, score_reference_length=8)
    backbone = TokenPruningBackbone(vocabulary_size=30, num_layers=3, num_heads=2, hidden_dim=8, intermediate_dim=16,
                                    max_sequence_length=16, pruning_config=config)
    model = TokenPruningClassifier(backbone, num_classes=2)
    model({"token_ids": np.ones((1, 4), "int32")})
    return model


def test_dense_twin_has_the_same_weights_and_prunes_nothing():
    model = _pruned_model()
    twin = results.dense_twin(model)
    assert twin.backbone.pruning_config.prune_mode == "none"
    assert model.backbone.pruning_config.prune_mode == "absolute_threshold"
    for a, b in zip(model.weights, twin.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
    inputs = {"token_ids": np.arange(1, 13, dtype="int32").reshape(2, 6)}
    kept = keras.ops.convert_to_numpy(twin.backbone(inputs)["kept_tokens"])
    assert (kept == 6).all()


def test_results_files(tmp_path):
    rows = [results.Row("keras_xla", "latency_b1_median_ms", 1, 10.0, 6.0, 2.0, 1.8, 1e-7),
            results.Row("keras_xla", "throughput_b32_per_s", 32, 100.0, 160.0, 2.0, 1.7, 1e-7)]
    assert rows[0].speedup == 10.0 / 6.0 and rows[1].speedup == 1.6
    assert rows[0].to_dict()["goal_met"] is True and rows[1].to_dict()["goal_met"] is False  # 0.83 >= 0.8; 0.8 < 0.85
    paths = results.write_results(rows, {"machine": "test"}, str(tmp_path), "run")
    assert sorted(os.listdir(tmp_path)) == ["run.csv", "run.json", "run.md", "run.png"]
    with open(paths["md"]) as f:
        table = f.read()
    assert "| keras_xla | throughput_b32_per_s | 100.00 | 160.00 | 1.60x | 2.00x | 0.80 |  |  | 0.85 | no |" in table


def test_fastest_dense_short_input_goal_and_length_plot(tmp_path):
    def row(engine, dataset, tokens, dense, pruned):
        return results.Row(engine, "latency_b1_median_ms", 1, dense, pruned, 2.0, 2.0, 0.0, dataset, tokens)

    rows = results.with_fastest_dense([row("onnxruntime", "sst2", 25, 4.0, 3.0),
                                       row("saved_model", "sst2", 25, 10.0, 5.0),
                                       row("onnxruntime", "long256", 256, 40.0, 25.0),
                                       row("saved_model", "long256", 256, 30.0, 20.0)])
    assert [(r.fastest_dense_engine, r.fastest_dense) for r in rows] == [
        ("onnxruntime", 4.0), ("onnxruntime", 4.0), ("saved_model", 30.0), ("saved_model", 30.0)]
    short_fast, short_slow, long_onnx, long_saved = (r.to_dict() for r in rows)
    assert short_slow["speedup_vs_fastest_dense"] == 0.8 and short_slow["goal_met"] is False  # slower than dense ORT
    assert short_fast["goal"] == 0.5 and short_fast["goal_met"] is True  # < 64 tokens: only "not slower"
    assert long_saved["goal"] == 0.8 and long_saved["goal_met"] is False  # 1.5x of 2x FLOPs: 0.75 < 0.8
    assert long_onnx["speedup_vs_fastest_dense"] == 1.2
    paths = results.write_results(rows, {}, str(tmp_path), "run")
    assert os.path.getsize(paths["length_png"]) > 0
