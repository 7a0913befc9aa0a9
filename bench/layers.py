"""``python -m bench.layers``: MAC utilization and DRAM traffic of network layers, measured
cycle by cycle on the generated accelerator in Verilator (DRAM read latency 50 cycles).

Rows: ResNet 3x3 shapes; every 1x1 shape of ResNet-50's bottlenecks at its real size
(conv1 and conv3 of a repeated block and the stride-2 downsample of each stage); the
pointwise and depthwise shapes of MobileNetV2; fully connected layers, whose ``weight_bus_share`` is the
share of the AXI read bus's cycles that carried weights (bound by weight bandwidth at
batch 1, since each weight is used once).

Writes ``build/bench/results.json``: ``{"config": {...}, "layers": [...]}`` with one row
per layer (name, C, K, H, W, kernel, stride, padding, macs, cycles, utilization,
dram_read_bytes, dram_write_bytes, weight_bus_share, sim_cycles_per_s, tiles).
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from host.compiler.planner import layer_tiles
from host.runtime.driver import prepare_layer
from host.runtime.sim import run_layers
from host.runtime.sim.layers import random_layer
from hw.config import AccelConfig
from hw.contract import weight_size

# name: (C, K, H, W, kernel, stride, padding) -- ResNet-18/50 and MobileNet-like shapes
LAYERS = {
    "resnet_3x3_64_56": (64, 64, 56, 56, 3, 1, 1),
    "resnet_3x3_64_28": (64, 64, 28, 28, 3, 1, 1),
    "resnet_3x3_128_s2": (64, 128, 28, 28, 3, 2, 1),
    "resnet_3x3_256_14": (256, 256, 14, 14, 3, 1, 1),
    "stem_like_3x3_c3": (3, 64, 56, 56, 3, 1, 1),
    "bottleneck_1x1_64_256": (64, 256, 14, 14, 1, 1, 0),
    # ResNet-50 1x1 layers at their size in a 224x224 network
    "r50_l1_conv1_256_64": (256, 64, 56, 56, 1, 1, 0),
    "r50_l1_conv3_64_256": (64, 256, 56, 56, 1, 1, 0),
    "r50_l1_down_64_256": (64, 256, 56, 56, 1, 1, 0),
    "r50_l2_conv1_512_128": (512, 128, 28, 28, 1, 1, 0),
    "r50_l2_conv3_128_512": (128, 512, 28, 28, 1, 1, 0),
    "r50_l2_down_256_512_s2": (256, 512, 56, 56, 1, 2, 0),
    "r50_l3_conv1_1024_256": (1024, 256, 14, 14, 1, 1, 0),
    "r50_l3_conv3_256_1024": (256, 1024, 14, 14, 1, 1, 0),
    "r50_l3_down_512_1024_s2": (512, 1024, 28, 28, 1, 2, 0),
    "r50_l4_conv1_2048_512": (2048, 512, 7, 7, 1, 1, 0),
    "r50_l4_conv3_512_2048": (512, 2048, 7, 7, 1, 1, 0),
    "r50_l4_down_1024_2048_s2": (1024, 2048, 14, 14, 1, 2, 0),
    # MobileNetV2 pointwise layers (expand / project) at 224x224
    "mnv2_expand_24_144_56": (24, 144, 56, 56, 1, 1, 0),
    "mnv2_project_144_24_56": (144, 24, 56, 56, 1, 1, 0),
    "mnv2_expand_32_192_28": (32, 192, 28, 28, 1, 1, 0),
    "mnv2_project_384_64_14": (384, 64, 14, 14, 1, 1, 0),
    "mnv2_expand_160_960_7": (160, 960, 7, 7, 1, 1, 0),
    "mnv2_last_320_1280_7": (320, 1280, 7, 7, 1, 1, 0),
    # MobileNetV2 depthwise 3x3 layers (groups = C = K), stride 1 and 2
    "mnv2_dw_144_56": (144, 144, 56, 56, 3, 1, 1, "depthwise"),
    "mnv2_dw_144_56_s2": (144, 144, 56, 56, 3, 2, 1, "depthwise"),
    "mnv2_dw_384_14": (384, 384, 14, 14, 3, 1, 1, "depthwise"),
    "mnv2_dw_960_7": (960, 960, 7, 7, 3, 1, 1, "depthwise"),
    # fully connected (a 1x1 conv on a 1x1 image)
    "fc_1x1_512_10": (512, 10, 1, 1, 1, 1, 0),
    "fc_2048_1000": (2048, 1000, 1, 1, 1, 1, 0),
}
LATENCY = 50


def measure(cfg, name, shape, rng):
    c, k, h, w, kernel, stride, padding, *depthwise = shape
    conv = random_layer(rng, c, k, kernel, stride, padding, groups=c if depthwise else 1)
    x = rng.integers(0, 256, size=(1, c, h, w), dtype=np.uint8)
    run = prepare_layer(cfg, conv, x, layer_tiles(cfg, conv, *x.shape[2:]))
    start = time.perf_counter()
    layer = run_layers(cfg, [{"run": run}], latency=LATENCY)["layers"][0]
    seconds = time.perf_counter() - start
    y = np.asarray(layer["output"], dtype=np.uint8).reshape(run.output_shape)
    if layer["error_code"] or not np.array_equal(y, conv(x)[0]):
        raise SystemExit(f"{name}: the accelerator's output is wrong (error {layer['error_code']})")
    counters = layer["counters"]
    macs = c * k * kernel * kernel * y.shape[1] * y.shape[2] // conv.groups
    bus_bytes = cfg.axi_data_width // 8
    return {"name": name, "C": c, "K": k, "H": h, "W": w, "kernel": kernel, "stride": stride,
            "padding": padding, "macs": macs, "cycles": counters["cycles"],
            "utilization": macs / (counters["cycles"] * cfg.macs_per_cycle),
            "dram_read_bytes": counters["dram_read_bytes"],
            "dram_write_bytes": counters["dram_write_bytes"],
            "weight_bus_share": weight_size(k, c, kernel, int(conv.depthwise)) / (counters["cycles"] * bus_bytes),
            "depthwise": conv.depthwise,
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
    print(f"KP={cfg.kp} YP={cfg.yp} ({cfg.macs_per_cycle} MACs/cycle), DRAM latency {LATENCY} cycles; "
          f"w bus: share of the read bus's cycles carrying weights")
    print(f"{'layer':24} {'C':>4} {'K':>4} {'HxW':>7} {'k/s/p':>6} {'MACs':>11} {'cycles':>9} "
          f"{'util':>6} {'read B':>9} {'write B':>8} {'w bus':>6} {'sim c/s':>8}")
    for name in args.layer or LAYERS:
        r = measure(cfg, name, LAYERS[name], rng)
        rows.append(r)
        print(f"{name:24} {r['C']:>4} {r['K']:>4} {r['H']:>3}x{r['W']:<3} "
              f"{r['kernel']}/{r['stride']}/{r['padding']:<2} {r['macs']:>11} {r['cycles']:>9} "
              f"{100 * r['utilization']:>5.1f}% {r['dram_read_bytes']:>9} {r['dram_write_bytes']:>8} "
              f"{100 * r['weight_bus_share']:>5.1f}% {r['sim_cycles_per_s']:>8.0f}", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"config": cfg.to_dict(), "latency": LATENCY, "layers": rows}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    sys.exit(main())
