#!/bin/sh
# bench/run_losses_cpu.sh: the CPU loss benchmark beside the PyTorch peer, in one session window.
# Runs `visreg bench losses` (all methods at the peer's CPU sizes), the peer
# (shared/peers/torch_anchor.py cpu, when python3 has torch), and the VISReg scaling run, each
# twice, interleaved, and writes the raw lines to $OUT (default /tmp/visreg-bench-losses). The table in
# bench/losses_cpu.md is made from these lines.
set -e
BIN=${VISREG_BIN:-bin/visreg}
PEER=${PEER:-../shared/peers/torch_anchor.py}
[ -f "$PEER" ] || PEER=../../shared/peers/torch_anchor.py
OUT=${OUT:-${TMPDIR:-/tmp}/visreg-bench-losses}
mkdir -p "$OUT"
uptime > "$OUT/load.txt"
for i in 1 2; do
  "$BIN" bench losses --json > "$OUT/ours$i.jsonl"
  if python3 -c "import torch" 2>/dev/null && [ -f "$PEER" ]; then
    OUT="$OUT" python3 "$PEER" cpu > "$OUT/torch$i.txt" 2>&1 || true
  fi
done
"$BIN" bench losses --methods visreg,swd,sigreg --scaling --json > "$OUT/scaling.jsonl"
uptime >> "$OUT/load.txt"
cat "$OUT"/load.txt "$OUT"/ours*.jsonl "$OUT"/torch*.txt "$OUT"/scaling.jsonl
