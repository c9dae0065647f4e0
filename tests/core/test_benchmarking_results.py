"""`ltp_tf.benchmarking.results`: the result rows and their files (with the plots)."""

import os

import numpy as np

from ltp_tf.benchmarking import results


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
