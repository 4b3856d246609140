#!/bin/sh
# The CPU training step side by side with PyTorch, run interleaved A B A B A B with the same
# thread count. Two workloads (WORKLOAD):
#   default   `visreg bench train` on the default recipe's workload (pool 1 and no online probe, to
#             match the peer's model) and the PyTorch peer's same step (../shared/peers/
#             torch_step_bench.py: fmnist_ref.py's small CNN of width 16, projector 512-512-128,
#             two augmented views of 256, VISReg with 1,024 slices, AdamW, clipping)
#   resnet18  recipes/fmnist_resnet18_visreg.lua on the CPU in f32 (ResNet-18 with the CIFAR stem,
#             projector 2048-2048-128), views of 32 x 32, two views of BATCH (32), and the peer's
#             same step (bench/torch_step_resnet.py: fmnist_ref.py's ResNet-18, channels-last)
# Prints each run, then the medians and ratios:
#   wall:  median step time (each tool's own median over its timed steps), and the spread of each
#          pair's own ratio
#   cpu:   CPU time (user + sys, all threads) per step, from two runs of STEPS_SHORT and STEPS
#          steps whose difference leaves out start-up; robust when other processes share the cores
#   rss:   the peak resident memory of the longer run
# Usage: bench/train_vs_torch.sh [PYTHON]   (PYTHON: one with torch, default /tmp/torchenv/bin/python)
# Environment: WORKLOAD (default|resnet18), THREADS (2), REPS (3), STEPS (20; resnet18 6),
#   STEPS_SHORT (4; resnet18 2), BATCH (resnet18's views, 32), PEER (../shared/peers), BIN (bin/visreg)
set -eu
PY=${1:-/tmp/torchenv/bin/python}
WORKLOAD=${WORKLOAD:-default}; THREADS=${THREADS:-2}; REPS=${REPS:-3}; BATCH=${BATCH:-32}
case $WORKLOAD in
  default) STEPS=${STEPS:-20}; STEPS_SHORT=${STEPS_SHORT:-4}; IMAGES=512 ;;
  resnet18) STEPS=${STEPS:-6}; STEPS_SHORT=${STEPS_SHORT:-2}; IMAGES=$((2 * BATCH)) ;;
  *) echo "WORKLOAD: expected default or resnet18, got $WORKLOAD" >&2; exit 2 ;;
esac
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEER=${PEER:-$ROOT/../shared/peers}
BIN=${BIN:-$ROOT/bin/visreg}
export OMP_NUM_THREADS=$THREADS
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT

# run_timed OUT CMD...: the command's stdout into OUT, its user+sys seconds into OUT.cpu and its
# peak resident memory (kB) into OUT.rss
run_timed() {
  out=$1; shift
  /usr/bin/time -f "%U %S %M" -o "$out.time" "$@" > "$out" 2> "$out.err" || { cat "$out.err" >&2; exit 1; }
  awk '{ print $1 + $2 }' "$out.time" > "$out.cpu"
  awk '{ print $3 }' "$out.time" > "$out.rss"
}
median_s() { sed -n 's/.*"median_s": *\([0-9.eE+-]*\).*/\1/p' "$1" | head -1; }
ours() {
  if [ "$WORKLOAD" = default ]; then
    run_timed "$1" "$BIN" bench train "$ROOT/recipes/fmnist_visreg.lua" --steps "$2" --warmup 2 --device cpu --json \
      --set model.pool=1 --set eval.online_probe=false
  else
    run_timed "$1" "$BIN" bench train "$ROOT/recipes/fmnist_resnet18_visreg.lua" --steps "$2" --warmup 1 --device cpu \
      --json --set precision=f32 --set memory_format=contiguous --set batch="$BATCH" --set views.global.size=32 \
      --set eval.online_probe=false
  fi
}
theirs() {
  if [ "$WORKLOAD" = default ]; then
    run_timed "$1" env PEER_DIR="$PEER" "$PY" "$PEER/torch_step_bench.py" --steps "$2" --warmup 2
  else
    run_timed "$1" env PEER_DIR="$PEER" "$PY" "$ROOT/bench/torch_step_resnet.py" --steps "$2" --warmup 1 --batch "$BATCH"
  fi
}

echo "CPU training step ($WORKLOAD), $THREADS threads, $REPS interleaved pairs, $STEPS timed steps (cpu: $STEPS minus $STEPS_SHORT)"
for r in $(seq 1 "$REPS"); do
  for side in ours theirs; do
    $side "$TMP/$side.$r.long" "$STEPS"
    $side "$TMP/$side.$r.short" "$STEPS_SHORT"
    wall=$(median_s "$TMP/$side.$r.long")
    cpu=$(awk -v a="$(cat "$TMP/$side.$r.long.cpu")" -v b="$(cat "$TMP/$side.$r.short.cpu")" \
          -v n=$((STEPS - STEPS_SHORT)) 'BEGIN { printf "%.5f", (a - b) / n }')
    rss=$(cat "$TMP/$side.$r.long.rss")
    echo "$wall $cpu $rss" >> "$TMP/$side.runs"
    printf "run %d %-6s  step %7.1f ms  cpu/step %7.1f ms  peak rss %5.0f MB\n" "$r" "$side" \
      "$(awk -v w="$wall" 'BEGIN { print 1e3 * w }')" "$(awk -v c="$cpu" 'BEGIN { print 1e3 * c }')" \
      "$(awk -v m="$rss" 'BEGIN { print m / 1024 }')"
  done
done
med() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for side in ours theirs; do
  awk '{ print $1 }' "$TMP/$side.runs" | med > "$TMP/$side.wall"
  awk '{ print $2 }' "$TMP/$side.runs" | med > "$TMP/$side.cpu"
  awk '{ print $3 }' "$TMP/$side.runs" | med > "$TMP/$side.rss"
done
awk -v im="$IMAGES" -v ow="$(cat "$TMP/ours.wall")" -v tw="$(cat "$TMP/theirs.wall")" -v oc="$(cat "$TMP/ours.cpu")" \
    -v tc="$(cat "$TMP/theirs.cpu")" -v orss="$(cat "$TMP/ours.rss")" -v trss="$(cat "$TMP/theirs.rss")" 'BEGIN {
  printf "median step   visreg %7.1f ms (%6.0f images/s)   pytorch %7.1f ms (%6.0f images/s)   ratio %.2fx\n",
         1e3 * ow, im / ow, 1e3 * tw, im / tw, tw / ow
  printf "cpu per step  visreg %7.1f ms   pytorch %7.1f ms   ratio %.2fx\n", 1e3 * oc, 1e3 * tc, tc / oc
  printf "peak memory   visreg %7.0f MB   pytorch %7.0f MB   ratio %.2fx\n", orss / 1024, trss / 1024, trss / orss }'
# each pair's own ratio (its two runs a minute apart, so that a slower spell of the machine
# weighs on both): the lowest, the median and the highest
paste "$TMP/ours.runs" "$TMP/theirs.runs" | awk '{ print $4 / $1 }' | sort -g > "$TMP/pairs"
awk -v m="$(med < "$TMP/pairs")" '{ v[NR] = $1 } END {
  printf "pair ratios   lowest %.2fx   median %.2fx   highest %.2fx (step time, theirs / ours)\n", v[1], m, v[NR] }' \
  "$TMP/pairs"
