"""Serving: SavedModel (TF Serving) and ONNX export of a checkpoint (TensorFlow).

Modules are imported on use: `signatures` (the SavedModel's signatures, TensorFlow), `xla_buckets` (their
optional XLA programs per length bucket, running `ltp_tf.inference`'s token dropping), `text` (the
checkpoint's tokenizer), `exporter` (a checkpoint to a published version), `publish` (version folders,
models.config), `onnx_export` (ONNX files, onnxruntime session options and predictor), `onnx_graph` (the
fused ONNX Runtime graph), `saved_model` (`load_export`: loads an export, TensorFlow Text ops registered
first) and `verify` (parity proof, CLI). In-process token-dropping inference is `ltp_tf.inference`.
"""
