"""Run in a subprocess by tests/tf/test_distribution.py: trains a tiny classifier and prints its losses.

Usage: python -m tests.distribution_probe <strategy>; the caller sets up two logical CPU devices, or for
multi_worker_mirrored starts two of these with TF_CONFIG, then kills worker 1 once it printed its losses: worker 0
then trains on and must exit with `lost_worker_message`'s error.
"""

import json
import os
import sys
import time

import keras
import numpy as np

from ltp_tf import TokenPruningBackbone, TokenPruningClassifier, TokenPruningConfig
from ltp_tf.distribution import check_global_batch, create_distribution, lost_worker_message


def main(strategy: str) -> None:
    if strategy in ("mirrored", "none") and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    keras.utils.set_random_seed(0)
    distribution = create_distribution(strategy)
    check_global_batch(8, distribution)
    rng = np.random.default_rng(0)
    # Masks travel as int32: tf.distribute cannot aggregate boolean inputs (AddN has no bool kernel).
    mask = np.arange(10)[None, :] < rng.integers(4, 11, size=32)[:, None]
    inputs = {"token_ids": np.where(mask, rng.integers(1, 50, size=(32, 10)), 0).astype("int32"),
              "padding_mask": mask.astype("int32")}
    labels = (inputs["token_ids"].sum(1) % 2).astype("int32")
    with distribution.scope():
        config = TokenPruningConfig(prune_mode="absolute_threshold", masking_mode="hard", final_token_threshold=0.01)
        backbone = TokenPruningBackbone(vocabulary_size=50, num_layers=2, num_heads=2, hidden_dim=16,
                                        intermediate_dim=32, max_sequence_length=16, dropout=0.0,
                                        pruning_config=config)
        model = TokenPruningClassifier(backbone, num_classes=2, dropout=0.0)
        model.compile(optimizer=keras.optimizers.SGD(0.05),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        history = model.fit(inputs, labels, batch_size=8, epochs=3, shuffle=False, verbose=0)
    print(json.dumps({"replicas": distribution.num_replicas, "loss": history.history["loss"]}), flush=True)
    if strategy == "multi_worker_mirrored":
        # The caller now kills worker 1; worker 0's next step must fail instead of waiting for it forever.
        if json.loads(os.environ["TF_CONFIG"])["task"]["index"] == 1:
            time.sleep(600)
        try:
            with distribution.scope():
                model.fit(inputs, labels, batch_size=8, epochs=1, shuffle=False, verbose=0)
        except Exception as error:
            message = lost_worker_message(error)
            if message is None:
                raise
            sys.exit(f"error: {message}")


if __name__ == "__main__":
    main(sys.argv[1])
