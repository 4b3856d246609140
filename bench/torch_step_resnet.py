# The PyTorch peer's ResNet-18 training step at 32 x 32 for the CPU comparison: fmnist_ref.py's own
# ResNet-18 (CIFAR stem, 1 channel), augmentation and objective, its views resized to 32 x 32,
# projector 2048-2048-128 (recipes/fmnist_resnet18_visreg.lua), 2 views of --batch, AdamW, clip 1,
# float32 and channels-last; the median of N timed steps after W warm-up, as `visreg bench train`
# reports it. Usage: python bench/torch_step_resnet.py [--batch 32] [--steps 5] [--warmup 1]
import sys, os, time, math, gzip, json, argparse, ast
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F
PEER = os.environ.get("PEER_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../shared/peers"))
sys.path.insert(0, PEER)
import torch_anchor as ta
ta.dev = "cpu"
ap = argparse.ArgumentParser(); ap.add_argument("--steps", type=int, default=5); ap.add_argument("--warmup", type=int, default=1)
ap.add_argument("--batch", type=int, default=32); ap.add_argument("--size", type=int, default=32)
ap.add_argument("--width", type=int, default=64); ap.add_argument("--proj", type=int, default=2048)
a = ap.parse_args()
# the peer's own definitions, taken from its source (every def/class before the training loop, and MEAN/STD)
tree = ast.parse(open(f"{PEER}/fmnist_ref.py").read())
keep = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) or
        (isinstance(n, ast.Assign) and any(getattr(t, "id", None) in ("MEAN", "STD") for t in getattr(n.targets[0], "elts", n.targets)))]
ns = {"__name__": "peer", "gzip": gzip, "torch": torch, "nn": nn, "F": F, "math": math, "np": np, "ta": ta, "dev": "cpu"}
exec(compile(ast.Module(body=keep, type_ignores=[]), "fmnist_ref_defs", "exec"), ns)
Xtr = torch.tensor(ns["idx"]("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")).float().div(255).unsqueeze(1)
torch.manual_seed(0)
B, P = a.batch, a.proj
enc, fd = ns["resnet18"](a.width)
proj = nn.Sequential(nn.Linear(fd, P), nn.BatchNorm1d(P), nn.ReLU(), nn.Linear(P, P), nn.BatchNorm1d(P), nn.ReLU(), nn.Linear(P, 128))
model = nn.Sequential(enc, proj).to(memory_format=torch.channels_last)
decay = [p for p in model.parameters() if p.ndim >= 2]; nodecay = [p for p in model.parameters() if p.ndim < 2]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": nodecay, "weight_decay": 0}], lr=1e-3)
perm = torch.randperm(len(Xtr))
def view(xb):
    return F.interpolate(ns["augment"](xb), size=a.size, mode="bilinear", align_corners=False)
def step(it):
    xb = Xtr[perm[it * B:(it + 1) * B]]
    x = torch.cat([view(xb), view(xb)]).contiguous(memory_format=torch.channels_last)
    loss = ns["objective"]("visreg", model(x).float().view(2, B, -1))
    opt.zero_grad(set_to_none=True); loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); opt.step()
ts = []
for i in range(a.warmup + a.steps):
    t = time.perf_counter(); step(i); d = time.perf_counter() - t
    if i >= a.warmup: ts.append(d)
s = sorted(ts); med = s[len(s) // 2] if len(s) % 2 else 0.5 * (s[len(s)//2 - 1] + s[len(s)//2])
print(json.dumps({"tool": "torch_step_resnet", "threads": torch.get_num_threads(), "steps": len(ts), "warmup": a.warmup,
      "median_s": round(med, 5), "mean_s": round(sum(ts) / len(ts), 5), "images_per_second": round(2 * B / med, 1),
      "feat_dim": fd}), flush=True)
