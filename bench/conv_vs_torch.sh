#!/bin/sh
# conv2d per layer side by side with PyTorch: `visreg bench conv` and bench/conv_torch.py
# (torch.nn.functional.conv2d, f32, NCHW) on the same shapes, forward + backward, run interleaved
# A B A B A B with the same thread count. Prints, for each layer, the medians over the pairs of
# each tool's wall time (its own median of RUNS runs) and CPU time, and the ratios PyTorch / visreg;
# then each network's layers once each, and ResNet-18's convolutions each counted as often as the
# network has it (4 x 64->64, 3 each of 128, 256 and 512 at stride 1, one of every other).
# Usage: bench/conv_vs_torch.sh [PYTHON]   (PYTHON: one with torch, default /tmp/torchenv/bin/python)
# Environment: NET (recipe|resnet18|vit|all, default all), THREADS (2), REPS (3), RUNS (5), BATCH
# (0: each network's own), BIN (bin/visreg), ARGS (more arguments for visreg's side, e.g.
# "--variant cpu_tiles=positions"), TORCH_ARGS (more for PyTorch's, e.g. "--channels-last": oneDNN's
# NHWC convolutions, as the PyTorch peers' training steps run them)
set -eu
PY=${1:-/tmp/torchenv/bin/python}
NET=${NET:-all}; THREADS=${THREADS:-2}; REPS=${REPS:-3}; RUNS=${RUNS:-5}; BATCH=${BATCH:-0}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/bin/visreg}
export OMP_NUM_THREADS=$THREADS
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
# each tool's layer lines as "net N C Co H k s path total_ms cpu_ms" (PyTorch's path: torch)
for r in $(seq 1 "$REPS"); do
  # shellcheck disable=SC2086
  "$BIN" bench conv --net "$NET" --threads "$THREADS" --runs "$RUNS" --batch "$BATCH" ${ARGS:-} |
    awk 'NF == 13 && $2 ~ /^[0-9]+$/ { print $1, $2, $3, $4, $5, $6, $7, $8, $11, $13 }' >> "$TMP/ours"
  # shellcheck disable=SC2086
  "$PY" "$ROOT/bench/conv_torch.py" --net "$NET" --threads "$THREADS" --runs "$RUNS" --batch "$BATCH" ${TORCH_ARGS:-} |
    awk 'NF == 12 && $2 ~ /^[0-9]+$/ { print $1, $2, $3, $4, $5, $6, $7, "torch", $10, $12 }' >> "$TMP/theirs"
  echo "pair $r of $REPS done" >&2
done
echo "conv2d forward + backward, $THREADS threads, medians of $REPS interleaved pairs (ms)"
printf "%-9s %5s %5s %5s %3s %2s %2s %6s  %9s %9s %7s  %9s %9s %7s\n" net N C Co HxW k s path \
  visreg torch ratio "cpu ours" "cpu torch" ratio
awk '
  function med(s,   a, n, i, j, t) { n = split(s, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
  FNR == 1 { side++ }
  { key = $1 " " $2 " " $3 " " $4 " " $5 " " $6 " " $7
    if (!(key in seen)) { seen[key] = 1; order[++nk] = key }
    if (side == 1) { path[key] = $8; ow[key] = ow[key] " " $9; oc[key] = oc[key] " " $10 }
    else { tw[key] = tw[key] " " $9; tc[key] = tc[key] " " $10 } }
  END { for (i = 1; i <= nk; i++) { k = order[i]; split(k, f, " ")
      a = med(ow[k]); b = med(tw[k]); c = med(oc[k]); d = med(tc[k]); net = f[1]
      sa[net] += a; sb[net] += b; sc[net] += c; sd[net] += d; if (!(net in nn)) { nn[net] = 1; nets[++m] = net }
      if (net == "resnet18") { n = f[3] == f[4] && f[3] == 64 ? 4 : f[3] == f[4] ? 3 : 1
        wa += n * a; wb += n * b; wc += n * c; wd += n * d }
      printf "%-9s %5s %5s %5s %3s %2s %2s %6s  %9.2f %9.2f %6.2fx  %9.2f %9.2f %6.2fx\n", f[1], f[2], f[3], f[4], f[5], f[6], f[7], path[k], a, b, b / a, c, d, d / c }
    for (i = 1; i <= m; i++) printf "%-9s all layers once each                     %9.2f %9.2f %6.2fx  %9.2f %9.2f %6.2fx\n", nets[i], sa[nets[i]], sb[nets[i]], sb[nets[i]] / sa[nets[i]], sc[nets[i]], sd[nets[i]], sd[nets[i]] / sc[nets[i]]
    if (wa > 0) printf "%-9s the network (each layer times its count)  %9.2f %9.2f %6.2fx  %9.2f %9.2f %6.2fx\n", "resnet18", wa, wb, wb / wa, wc, wd, wd / wc }' "$TMP/ours" "$TMP/theirs"
