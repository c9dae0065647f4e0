"""Two worker processes on 127.0.0.1 (`multi_worker_mirrored`, TF_CONFIG): the one-process loss trajectory for the
same global batch, and a clear error, not a hang, on the surviving worker when the other is killed.

One cluster serves both checks (each start costs two TensorFlow imports and a cluster rendezvous); the
one-process reference runs alongside it.
"""

import json
import os
import selectors
import socket
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIMEOUT_S = 240  # per wait; the whole test takes ~40 s on an idle 2-core machine


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _start(strategy: str, tf_config: dict | None = None) -> subprocess.Popen:
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return subprocess.Popen([sys.executable, "-m", "tests.distribution_probe", strategy], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_workers_match_one_process_and_fail_cleanly_when_one_dies():
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    workers = [_start("multi_worker_mirrored", {"cluster": cluster, "task": {"type": "worker", "index": index}})
               for index in range(2)]
    single = _start("none")
    try:
        out, err = single.communicate(timeout=TIMEOUT_S)
        assert single.returncode == 0, err[-3000:]
        reference = json.loads(out.strip().splitlines()[-1])

        # Worker 1 prints its losses, then waits to be killed.
        worker_1_line = _read_line(workers[1])
        workers[1].kill()
        workers[1].wait(timeout=TIMEOUT_S)
        # Worker 0 trains on, and must stop by itself with the library's error.
        out, err = workers[0].communicate(timeout=TIMEOUT_S)
    finally:
        for process in (*workers, single):
            if process.poll() is None:
                process.kill()
                process.communicate(timeout=60)
    chief = json.loads(out.strip().splitlines()[0])
    assert reference["replicas"] == 1 and chief["replicas"] == 2
    assert json.loads(worker_1_line) == chief
    # Same examples, same order, float32: only the all-reduce's summation order differs (measured: 2e-7).
    np.testing.assert_allclose(chief["loss"], reference["loss"], rtol=1e-5)
    assert workers[0].returncode == 1, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: a worker of the multi_worker_mirrored cluster stopped"), err[-3000:]
    assert "/job:worker/replica:0/task:1" in last


def _read_line(process: subprocess.Popen) -> str:
    """The first stdout line, within TIMEOUT_S (a worker that never gets there is killed by the caller)."""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        assert selector.select(timeout=TIMEOUT_S), "worker 1 printed nothing"
    line = process.stdout.readline()
    assert line, f"worker 1 exited early: {process.communicate(timeout=60)[1][-3000:]}"
    return line
