#!/usr/bin/env bash
# What runs on the lent GPU machine (the `device` tool's `run`, in the repository root there, $OUT its result
# folder), in one call: issue 17's campaign (`benchmarks/gpu_campaign.sh`), then issue 15's GPU speed table
# (`benchmarks.runner_speed`) on the campaign's LTP 2x checkpoints.
#
#   run(command="bash benchmarks/gpu_device.sh 370", carry=[".whl", ".gpu"], timeout_s=600)
#
# Carried, prepared here (both git-ignored):
#   .whl/   keras 3.15.1, keras-hub 0.32.0, namex, optree wheels for Python 3.12 (the machine has JAX, not Keras)
#   .gpu/features/<task>_<length>/   `python -m ltp_tf.train --stages=tokenize` of each task (no TensorFlow there)
#   .gpu/minilm16/   the packaged MiniLM with its float32 weights stored as float16 (45 MB: float32's 91 MB is over
#                    the 64 MiB a call carries); they are cast back to float32 there before training. Rounding to
#                    float16 moves each weight by at most 4.9e-4 of its value (23k of 22.7M values, under 6.1e-5,
#                    by more), well under the bfloat16 rounding (3.9e-3) that every training step applies.
# Preparing them here (session 9):
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 -d .whl \
#     keras==3.15.1 namex==0.1.0 optree==0.20.0 keras-hub==0.32.0
#   python -m ltp_tf.train --task=<task> --max_seq_length=<64|128> --stages=tokenize \
#     --features_dir=.gpu/features/<task>_<length>      # sst2, cola: 64; mrpc, stsb, rte: 128
#   .gpu/minilm16/: config.json, vocab.txt, tokenizer_config.json, special_tokens_map.json of the packaged MiniLM
#     and its model.safetensors with every float32 tensor cast to float16 (safetensors.numpy load_file/save_file).
# The argument is the campaign's deadline in seconds. The sweeps go to benchmarks/sweeps_gpu/<task>/ there. Writes
# to $OUT: device.txt, campaign.txt (the sweeps' tables), campaign.tgz (every results.*, pareto.png, report.json
# and log of the sweeps), speed_<task>.json.
set -u
deadline=${1:-370}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "${WHEELS:-.whl}"/*.whl \
  || exit 1
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3
# `python` as the campaign calls it: python3 itself (a wrapper, not a link: a link to a venv's python leaves the venv)
mkdir -p /tmp/bin && printf '#!/bin/sh\nexec %s "$@"\n' "$(command -v python3)" > /tmp/bin/python && chmod +x /tmp/bin/python
export PATH=/tmp/bin:$PATH
python - <<'PY' || exit 1
import os, shutil
import numpy as np
from safetensors.numpy import load_file, save_file
os.makedirs("/tmp/minilm", exist_ok=True)
for name in os.listdir(".gpu/minilm16"):
    if name != "model.safetensors":
        shutil.copy(os.path.join(".gpu/minilm16", name), "/tmp/minilm")
weights = load_file(".gpu/minilm16/model.safetensors")
save_file({k: v.astype(np.float32) if v.dtype == np.float16 else v for k, v in weights.items()},
          "/tmp/minilm/model.safetensors")
PY
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; nproc; python --version;
  python -c "import jax, keras; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)"; } \
  > "$OUT/device.txt" 2>&1
cat "$OUT/device.txt"
out=benchmarks/sweeps_gpu  # in the repository, so the tables' commands read as they would in a clone
bash benchmarks/gpu_campaign.sh .gpu/features /tmp/minilm "$out" "$deadline" > "$OUT/campaign.txt" 2>&1
echo "campaign done at ${SECONDS} s"
(cd "$out" && find . -name jax_cache -prune -o \( -name 'results.*' -o -name pareto.png -o -name '*.log' \
  -o -name report.json \) -print0 | tar czf "$OUT/campaign.tgz" --null -T -)
for spec in sst2:64 mrpc:128; do  # while the call has time left (its limit is 600 s)
  task=${spec%%:*}
  [ "$SECONDS" -lt 480 ] || { echo "$task: no time left to time it"; continue; }
  checkpoint=$(find "$out/$task/ltp_target2" -name checkpoint.json -path '*/hard/*' 2>/dev/null | head -1)
  [ -n "$checkpoint" ] || { echo "$task: no finished ltp_target2 to time"; continue; }
  timeout 90 python -m benchmarks.runner_speed --checkpoint="$(dirname "$checkpoint")" --latency_examples=200 \
    --features_dir=".gpu/features/${task}_${spec##*:}" --batch_sizes=32,256 --output="$OUT/speed_$task.json"
done
tail -n 60 "$OUT/campaign.txt"
