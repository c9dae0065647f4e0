"""A TFX-style pipeline for LTP: ExampleGen -> Transform -> Trainer -> Evaluator -> Pusher.

TFX itself cannot be installed here (its `ml-metadata` has no wheel for Python 3.11), so the
orchestration is small and local: components with explicit artifacts on disk, every execution recorded in
an embedded SQLite metadata store, cached and resumable runs. The data-heavy components run as Apache Beam
pipelines (DirectRunner by default, any runner through `--beam_pipeline_args`).
"""
