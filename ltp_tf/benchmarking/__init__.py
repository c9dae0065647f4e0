"""Benchmarking dense against token-pruned inference (the pieces of `ltp_tf.benchmark`).

Modules are imported on use: `results` (the dense twin, batches, padded FLOPs, interleaved timing, the
results table and its files) and `length_gate` (the length gate's calibration from timings).
"""
