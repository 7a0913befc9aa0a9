"""Simulation speed of the fast engine (host.runtime.sim.rtlsim) and, optionally, the cocotb engine.

``python -m bench.rtlsim_speed`` runs a large layer (C = K = 64 at 56x56, 3x3, about
1.1M cycles on the default configuration) and a tiny one on the fast engine, printing
simulated cycles per second and the per-layer overhead (a harness call for a layer of a
few hundred cycles, the harness already running). ``--compare`` also runs C = K = 64 at 28x28
on both engines and checks that the counters agree. Results go to
``build/bench/rtlsim_speed.json``.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

from hw.config import AccelConfig

from host.runtime.sim import rtlsim
from host.compiler.planner import layer_tiles
from host.runtime.driver import prepare_layer
from host.golden.quant import QuantConv


def layer(c, k, size, seed=0, kernel=3, stride=1, padding=1):
    rng = np.random.default_rng(seed)
    weight = rng.integers(-128, 128, size=(k, c, kernel, kernel)).astype(np.int8)
    conv = QuantConv(weight=weight, bias_q=rng.integers(-5000, 5000, size=k),
                     multiplier=np.float32(1.0 / (np.sqrt(c * kernel * kernel) * 74)),
                     input_zero_point=128, output_zero_point=100, stride=stride, padding=padding)
    x = rng.integers(0, 256, size=(1, c, size, size), dtype=np.uint8)
    return conv, x


def timed(cfg, conv, x, latency, engine):
    from host.runtime.sim import run_layers
    run = prepare_layer(cfg, conv, x, layer_tiles(cfg, conv, *x.shape[2:]))
    start = time.perf_counter()
    result = run_layers(cfg, [{"run": run}], latency=latency, engine=engine)
    seconds = time.perf_counter() - start
    out = result["layers"][0]
    y = np.asarray(out["output"], dtype=np.uint8).reshape(run.output_shape)
    exact = bool((y == conv(x)[0]).all())
    return out["counters"], seconds, exact


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.rtlsim_speed", description=__doc__.split("\n")[0])
    parser.add_argument("--kp", type=int, default=AccelConfig.kp)
    parser.add_argument("--yp", type=int, default=AccelConfig.yp)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--size", type=int, default=56)
    parser.add_argument("--latency", type=int, default=50)
    parser.add_argument("--compare", action="store_true",
                        help="also time C = K = 64 at 28x28 (277k cycles) on both engines and "
                             "compare the counters")
    parser.add_argument("--out", default="build/bench")
    args = parser.parse_args(argv)
    cfg = AccelConfig(kp=args.kp, yp=args.yp)
    report = {"config": cfg.to_dict(), "latency": args.latency}

    start = time.perf_counter()
    rtlsim.harness(cfg)
    report["harness_start_s"] = time.perf_counter() - start
    print(f"harness ready in {report['harness_start_s']:.1f} s (Verilog, build on first use, process start)")

    conv, x = layer(4, 4, 8, seed=1)
    timed(cfg, conv, x, args.latency, "cpp")           # warm
    times = []
    for _ in range(5):
        counters, seconds, exact = timed(cfg, conv, x, args.latency, "cpp")
        times.append(seconds)
    report["tiny_layer"] = {"cycles": counters["cycles"], "seconds": min(times), "exact": exact}
    print(f"tiny layer (4x4 channels, 8x8): {counters['cycles']} cycles, "
          f"{1000 * min(times):.1f} ms per layer on the fast engine (per-layer overhead)")

    c = args.channels
    conv, x = layer(c, c, args.size, seed=2)
    counters, seconds, exact = timed(cfg, conv, x, args.latency, "cpp")
    rate = counters["cycles"] / seconds
    report["large_layer"] = {"shape": [c, c, args.size, args.size], "cycles": counters["cycles"],
                             "seconds": seconds, "cycles_per_s": rate, "exact": exact}
    print(f"large layer (C=K={c}, {args.size}x{args.size}, 3x3): {counters['cycles']} cycles in "
          f"{seconds:.2f} s = {rate / 1000:.0f}k cycles/s on the fast engine "
          f"({'bit-exact' if exact else 'NOT EXACT'})")

    if args.compare:
        conv, x = layer(64, 64, 28, seed=3)
        fast, fast_s, _ = timed(cfg, conv, x, args.latency, "cpp")
        slow, slow_s, _ = timed(cfg, conv, x, args.latency, "cocotb")
        report["compare"] = {"cycles": fast["cycles"], "cpp_s": fast_s, "cocotb_s": slow_s,
                             "cpp_cycles_per_s": fast["cycles"] / fast_s,
                             "cocotb_cycles_per_s": slow["cycles"] / slow_s,
                             "counters_equal": fast == slow}
        print(f"medium layer (C=K=64, 28x28, 3x3): {fast['cycles']} cycles; fast {fast_s:.2f} s "
              f"({fast['cycles'] / fast_s / 1000:.0f}k cycles/s), cocotb {slow_s:.2f} s "
              f"({slow['cycles'] / slow_s / 1000:.1f}k cycles/s, start-up included); "
              f"counters {'identical' if fast == slow else 'DIFFER'}")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "rtlsim_speed.json").write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    import sys
    sys.exit(main())
