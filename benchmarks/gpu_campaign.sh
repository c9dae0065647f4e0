#!/usr/bin/env bash
# Issue 17's results campaign on one GPU machine (Keras on JAX: XLA, mixed_bfloat16): one `benchmarks.sweep` per
# GLUE task, all at once, each training up to JOBS points at a time (`--jobs`), all stopped at a deadline. The
# rows finished by then are in <OUT_ROOT>/<task>/results.json; a rerun with the same arguments continues.
#
#   KERAS_BACKEND=jax bash benchmarks/gpu_campaign.sh FEATURES_ROOT MODEL_DIR OUT_ROOT DEADLINE_SECONDS
#
# FEATURES_ROOT/<task>_<length>/ are tokenized where TensorFlow is (the GPU machine has no TensorFlow text ops):
#   python -m ltp_tf.train --task=<task> --max_seq_length=<length> --stages=tokenize --features_dir=...
# MODEL_DIR is the pretrained encoder (a Hugging Face folder). Every batch is padded to the task's length, so each
# training and evaluation step compiles once.
#
# The recipe per task: a dense grid (lr 2e-5, 5e-5, 1e-4; 3 epochs, warm-up 0.1, best dev epoch), then from the
# selected dense model LTP + KD at 2x and 2.5x fewer FLOPs, top-k at LTP 2x's kept ratios (+ KD), 2:4 weights
# with distillation, and the dense control (as many more epochs as LTP's two stages). LTP stages are 5 + 5
# epochs on the small tasks, 2 + 2 on SST-2. Seeds 42, 43, 44 (SST-2: 42, 43) for dense, control, LTP 2x and
# top-k at equal FLOPs. CAMPAIGN_TASKS (default "sst2 mrpc stsb rte cola") picks tasks; CAMPAIGN_TRAIN_FLAGS and
# CAMPAIGN_SWEEP_FLAGS add flags (e.g. a small dry run).
set -u
if [ $# -ne 4 ]; then
  echo "usage: bash benchmarks/gpu_campaign.sh FEATURES_ROOT MODEL_DIR OUT_ROOT DEADLINE_SECONDS" >&2
  exit 2
fi
features=$1 model=$2 out=$3 deadline=$4
tasks=${CAMPAIGN_TASKS:-sst2 mrpc stsb rte cola}
[[ $deadline =~ ^[1-9][0-9]*$ ]] || { echo "DEADLINE_SECONDS must be an integer >= 1. Received: $deadline" >&2; exit 2; }
for task in $tasks; do  # every argument checked before anything starts
  case $task in sst2 | mrpc | stsb | rte | cola) ;; *)
    echo "CAMPAIGN_TASKS must name tasks among sst2, mrpc, stsb, rte, cola. Received: $task" >&2; exit 2 ;;
  esac
done
[ -d "$model" ] || { echo "MODEL_DIR must be a folder. Received: $model" >&2; exit 2; }
mkdir -p "$out"
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # many training processes share the GPU
export JAX_COMPILATION_CACHE_DIR=${JAX_COMPILATION_CACHE_DIR:-/tmp/ltp_tf_jax_cache}  # seeds reuse compiled steps
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0 JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES=0

sweep() {  # task length seeds prune_epochs jobs
  local task=$1 length=$2 seeds=$3 epochs=$4 jobs=$5
  timeout -k 15 "$deadline" python -m benchmarks.sweep --task="$task" --output_dir="$out/$task" \
    --model="$model" --latency_examples=0 --jobs="$jobs" --seeds="$seeds" \
    --dense_lrs=2e-5,5e-5,1e-4 --prune_epochs="$epochs" --sparse_epochs=$((2 * epochs)) \
    --targets=2,2.5 --no_kd_targets= --keep_rates= --thresholds= --sparsity=2:4 --sparse_ltp_lambda= \
    --seed_points=dense,dense_control,ltp_target2,topk_eq_ltp_target2 \
    --train_flags="--features_dir=$features/${task}_$length,--max_seq_length=$length,--pad_to_multiple_of=$length,--bs=32${CAMPAIGN_TRAIN_FLAGS:+,$CAMPAIGN_TRAIN_FLAGS}" \
    ${CAMPAIGN_SWEEP_FLAGS:-} > "$out/$task.log" 2>&1
  echo "$task: sweep exit status $? (124: stopped at the deadline)"
}

for task in $tasks; do
  case $task in
    sst2) sweep sst2 64 42,43 2 6 & ;;  # 6: the second seed's dense starts with the first seed's points
    mrpc) sweep mrpc 128 42,43,44 5 4 & ;;
    stsb) sweep stsb 128 42,43,44 5 4 & ;;
    rte) sweep rte 128 42,43,44 5 3 & ;;
    cola) sweep cola 64 42,43,44 5 3 & ;;
  esac
done
wait
for task in $tasks; do
  echo "== $task"; grep -A40 "^| method" "$out/$task/results.md" 2>/dev/null | head -30
done
