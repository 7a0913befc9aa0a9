"""``python -m bench.layers``: MAC utilization and DRAM traffic of network layers, measured
cycle by cycle on the generated accelerator in Verilator (DRAM read latency 50 cycles).

Writes ``build/bench/results.json``: ``{"config": {...}, "layers": [...]}`` with one row
per layer (name, C, K, H, W, kernel, stride, padding, macs, cycles, utilization,
dram_read_bytes, dram_write_bytes, sim_cycles_per_s, tiles).
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from host.runtime.driver import prepare_layer
from host.runtime.sim import run_layers
from host.runtime.sim.layers import random_layer
from hw.config import AccelConfig

# name: (C, K, H, W, kernel, stride, padding) -- ResNet-18/50 and MobileNet-like shapes
LAYERS = {
    "resnet_3x3_64_56": (64, 64, 56, 56, 3, 1, 1),
    "resnet_3x3_64_28": (64, 64, 28, 28, 3, 1, 1),
    "resnet_3x3_128_s2": (64, 128, 28, 28, 3, 2, 1),
    "resnet_3x3_256_14": (256, 256, 14, 14, 3, 1, 1),
    "stem_like_3x3_c3": (3, 64, 56, 56, 3, 1, 1),
    "bottleneck_1x1_64_256": (64, 256, 14, 14, 1, 1, 0),
    "fc_1x1_512_10": (512, 10, 1, 1, 1, 1, 0),
}
LATENCY = 50


def measure(cfg, name, shape, rng):
    c, k, h, w, kernel, stride, padding = shape
    conv = random_layer(rng, c, k, kernel, stride, padding)
    x = rng.integers(0, 256, size=(1, c, h, w), dtype=np.uint8)
    run = prepare_layer(cfg, conv, x)
    start = time.perf_counter()
    layer = run_layers(cfg, [{"run": run}], latency=LATENCY)["layers"][0]
    seconds = time.perf_counter() - start
    y = np.asarray(layer["output"], dtype=np.uint8).reshape(run.output_shape)
    if layer["error_code"] or not np.array_equal(y, conv(x)[0]):
        raise SystemExit(f"{name}: the accelerator's output is wrong (error {layer['error_code']})")
    counters = layer["counters"]
    macs = c * k * kernel * kernel * y.shape[1] * y.shape[2]
    return {"name": name, "C": c, "K": k, "H": h, "W": w, "kernel": kernel, "stride": stride,
            "padding": padding, "macs": macs, "cycles": counters["cycles"],
            "utilization": macs / (counters["cycles"] * cfg.macs_per_cycle),
            "dram_read_bytes": counters["dram_read_bytes"],
            "dram_write_bytes": counters["dram_write_bytes"],
            "sim_cycles_per_s": counters["cycles"] / seconds,
            "tiles": {n: run.descriptor["tile_" + n] for n in ("k", "c", "xo", "yo")},
            "stalls": {n: counters[n] for n in counters if n.startswith("stall")}}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.layers", description=__doc__.split("\n")[0])
    parser.add_argument("--kp", type=int, default=AccelConfig.kp)
    parser.add_argument("--yp", type=int, default=AccelConfig.yp)
    parser.add_argument("--layer", action="append", choices=sorted(LAYERS), help="default: all")
    parser.add_argument("--out", default="build/bench/results.json")
    args = parser.parse_args(argv)
    cfg = AccelConfig(kp=args.kp, yp=args.yp)
    rng = np.random.default_rng(2026)
    # build (or find) the simulation model first, so that rates exclude the build
    measure(cfg, "warm-up", (4, 4, 6, 6, 3, 1, 1), rng)
    rows = []
    print(f"KP={cfg.kp} YP={cfg.yp} ({cfg.macs_per_cycle} MACs/cycle), DRAM latency {LATENCY} cycles")
    print(f"{'layer':24} {'C':>4} {'K':>4} {'HxW':>7} {'k/s/p':>6} {'MACs':>11} {'cycles':>9} "
          f"{'util':>6} {'read B':>9} {'write B':>8} {'sim c/s':>8}")
    for name in args.layer or LAYERS:
        r = measure(cfg, name, LAYERS[name], rng)
        rows.append(r)
        print(f"{name:24} {r['C']:>4} {r['K']:>4} {r['H']:>3}x{r['W']:<3} "
              f"{r['kernel']}/{r['stride']}/{r['padding']:<2} {r['macs']:>11} {r['cycles']:>9} "
              f"{100 * r['utilization']:>5.1f}% {r['dram_read_bytes']:>9} {r['dram_write_bytes']:>8} "
              f"{r['sim_cycles_per_s']:>8.0f}", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"config": cfg.to_dict(), "latency": LATENCY, "layers": rows}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    sys.exit(main())
