"""Two logical CPU devices: the same loss trajectory as one device for the same global batch."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from ltp_tf.distribution import Distribution, check_global_batch, create_distribution, lost_worker_message

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _start_probe(strategy: str, backend: str) -> subprocess.Popen:
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    return subprocess.Popen([sys.executable, "-m", "tests.distribution_probe", strategy], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _losses(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.parametrize("backend, strategy", [("tensorflow", "mirrored"), ("jax", "data_parallel")])
def test_two_devices_match_one(backend, strategy):
    # Both probes run at once: each is mostly one process's imports and tracing, so they overlap on 2 cores.
    probes = [_start_probe("none", backend), _start_probe(strategy, backend)]
    try:
        single, multi = (_losses(probe) for probe in probes)
    finally:
        for probe in probes:
            if probe.poll() is None:
                probe.kill()
                probe.communicate(timeout=60)
    assert single["replicas"] == 1 and multi["replicas"] == 2
    np.testing.assert_allclose(multi["loss"], single["loss"], rtol=1e-4)
    assert multi["loss"][-1] < multi["loss"][0]


def test_invalid_strategies(monkeypatch):
    with pytest.raises(ValueError, match="`distribution_strategy` must be one of"):
        create_distribution("horovod")
    with pytest.raises(ValueError, match="'data_parallel' is Keras's JAX distribution"):
        create_distribution("data_parallel")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="needs the TF_CONFIG environment variable"):
        create_distribution("multi_worker_mirrored")
    with pytest.raises(ValueError, match="must be divisible by the 2 replicas"):
        check_global_batch(9, Distribution("mirrored", 2))


def test_lost_worker_message_only_for_an_aborted_collective():
    import tensorflow as tf

    aborted = tf.errors.UnavailableError(None, None, "Collective ops is aborted by: The following tasks are\n"
                                         "unhealthy (stopped sending heartbeats):\n/job:worker/replica:0/task:1")
    message = lost_worker_message(aborted)
    assert message.startswith("a worker of the multi_worker_mirrored cluster stopped")
    assert "\n" not in message and message.endswith("heartbeats): /job:worker/replica:0/task:1)")
    assert lost_worker_message(ValueError("bad")) is None
    assert lost_worker_message(tf.errors.InvalidArgumentError(None, None, "bad")) is None
