"""Benchmarking dense against token-pruned inference: `ltp_tf.benchmark` and the other timings of the project.

Modules are imported on use (TensorFlow, onnxruntime and matplotlib only when a benchmark runs):
`dense_vs_pruned` (`BenchmarkConfig` and `run`: the benchmark itself), `engines` (dense and pruned models as
predictors through each engine, settings passed in), `timing` (timing in turns, the one place every
latency of the project is measured), `inputs` (dev batches, long inputs, calibration sentences),
`padded_flops` (the FLOPs reduction as padded batches execute it), `results` (rows, goals, table and files;
the dense twin), `plots` (the result plots) and `length_gate` (the length gate's calibration from timings).
"""
