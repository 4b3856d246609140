"""The decode + resize peer of `bin/visreg bench data DIR`: Pillow on the same JPEG folder, one
process (one core), as a torchvision ImageFolder + Resize(size) + CenterCrop(size) pipeline decodes.
  python3 bench/peer_decode_pil.py DIR [SIZE]
draft(): libjpeg's DCT-domain downscaling (as visreg uses TurboJPEG's); resize: Pillow's
reducing_gap + antialiased bilinear, as torchvision's Resize on PIL images. A comparison peer only:
nothing in the toolkit or its tests runs it."""
import os, sys, time
from PIL import Image

root, size = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 64
files = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.lower().endswith((".jpg", ".jpeg", ".png")))
for draft in (False, True):
    t0 = time.perf_counter()
    for p in files:
        with Image.open(p) as im:
            if draft:
                im.draft("RGB", (size, size))
            im = im.convert("RGB")
            w, h = im.size
            s = size / min(w, h)
            im = im.resize((max(size, round(w * s)), max(size, round(h * s))), Image.BILINEAR, reducing_gap=None if draft else 2.0)
            w, h = im.size
            l, t = (w - size) // 2, (h - size) // 2
            im.crop((l, t, l + size, t + size)).tobytes()
    dt = time.perf_counter() - t0
    print(f"pillow {Image.__version__} decode+resize{' (draft)' if draft else ''}, 1 core: {len(files) / dt:.0f} images/s ({len(files)} files)")
