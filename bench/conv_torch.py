# PyTorch's side of `visreg bench conv`: per-layer time of torch.nn.functional.conv2d forward and
# backward (grad x and grad w; grad w only for a network's first layer) on the same shapes, f32,
# medians of several runs after 2 warm-up; cpu_ms is the process's CPU time over all threads. Run with PyTorch from PyPI in a virtual environment
# outside the tree: python bench/conv_torch.py [--threads 2] [--runs 5] [--net recipe|resnet18|vit|all]
# [--channels-last]
import argparse, time, torch, torch.nn.functional as F

LAYERS = [  # net, C, Co, H, k, stride, pad, first
    ("recipe", 1, 16, 28, 3, 1, 1, 1), ("recipe", 16, 32, 14, 3, 1, 1, 0),
    ("recipe", 32, 64, 7, 3, 1, 1, 0), ("recipe", 64, 64, 7, 3, 1, 1, 0),
    ("resnet18", 3, 64, 32, 3, 1, 1, 1), ("resnet18", 64, 64, 32, 3, 1, 1, 0),
    ("resnet18", 64, 128, 32, 3, 2, 1, 0), ("resnet18", 64, 128, 32, 1, 2, 0, 0),
    ("resnet18", 128, 128, 16, 3, 1, 1, 0), ("resnet18", 128, 256, 16, 3, 2, 1, 0),
    ("resnet18", 128, 256, 16, 1, 2, 0, 0), ("resnet18", 256, 256, 8, 3, 1, 1, 0),
    ("resnet18", 256, 512, 8, 3, 2, 1, 0), ("resnet18", 256, 512, 8, 1, 2, 0, 0),
    ("resnet18", 512, 512, 4, 3, 1, 1, 0),
    ("vit", 1, 192, 28, 7, 7, 0, 1), ("vit", 3, 192, 32, 4, 4, 0, 1),
]

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=2); ap.add_argument("--runs", type=int, default=5)
ap.add_argument("--net", default="all"); ap.add_argument("--batch", type=int, default=0)
ap.add_argument("--channels-last", action="store_true")
a = ap.parse_args()
torch.set_num_threads(a.threads)
fmt = torch.channels_last if a.channels_last else torch.contiguous_format
print(f"torch {torch.__version__} conv2d: {torch.get_num_threads()} threads, "
      f"{'channels-last' if a.channels_last else 'NCHW'}, median of {a.runs} runs after 2 warm-up")
print(f"{'net':9s} {'N':>5s} {'C':>5s} {'Co':>5s} {'HxW':>3s} {'k':>2s} {'s':>2s}  {'fwd_ms':>9s} {'bwd_ms':>9s} {'total_ms':>9s} {'GFLOP/s':>8s} {'cpu_ms':>9s}")
tot, ctot = {}, {}
g = torch.Generator().manual_seed(0)
for net, C, Co, H, k, s, p, first in LAYERS:
    if a.net != "all" and a.net != net: continue
    N = a.batch or (512 if net == "recipe" else 128)
    x = (torch.rand(N, C, H, H, generator=g) * 2 - 1).contiguous(memory_format=fmt).requires_grad_(not first)
    w = ((torch.rand(Co, C, k, k, generator=g) * 2 - 1) * 0.1).contiguous(memory_format=fmt).requires_grad_()
    Ho = (H + 2 * p - k) // s + 1
    gy = (torch.rand(N, Co, Ho, Ho, generator=g) * 2 - 1).contiguous(memory_format=fmt)
    tf, tb, tc = [], [], []
    for r in range(a.runs + 2):
        c0 = time.process_time(); t0 = time.perf_counter(); y = F.conv2d(x, w, None, s, p); t1 = time.perf_counter()
        y.backward(gy); t2 = time.perf_counter(); c2 = time.process_time()
        x.grad = None; w.grad = None
        if r >= 2: tf.append(t1 - t0); tb.append(t2 - t1); tc.append(c2 - c0)
    med = lambda v: sorted(v)[len(v) // 2] if len(v) % 2 else 0.5 * (sorted(v)[len(v) // 2 - 1] + sorted(v)[len(v) // 2])
    f, b, c = med(tf), med(tb), med(tc)
    fl = 2.0 * N * Co * C * k * k * Ho * Ho * (2 if first else 3)
    print(f"{net:9s} {N:5d} {C:5d} {Co:5d} {H:3d} {k:2d} {s:2d}  {f*1e3:9.2f} {b*1e3:9.2f} {(f+b)*1e3:9.2f} {fl/(f+b)*1e-9:8.1f} {c*1e3:9.2f}")
    tot[net] = tot.get(net, 0) + f + b; ctot[net] = ctot.get(net, 0) + c
for net, t in tot.items(): print(f"{net} layers in all: {t*1e3:.2f} ms, cpu {ctot[net]*1e3:.2f} ms")
