"""Random pooling-engine passes through the simulated RTL, checked byte for byte against
the golden machine (``host.golden.machine.execute_pool``, itself checked against PyTorch's
pooling kernels in tests/test_ops.py and sim_tests/test_pool.py).

Each pass draws its mode (``MAX`` most often, ``AVG``, ``GLOBAL`` row by row or as the
compiler issues a dense one, ``global_in_one_row``), 1 to 5 channels, rows up to the
engine's ``line_buffer_depth``, windows of 1 to 17 columns (the grouped max outputs and
the one-column-a-cycle path), any stride from 1 to 17, any padding below the kernel,
``ceil_mode`` output sizes, row and channel pitches above the dense ones, a random zero
point and average multiplier, and a DRAM latency of 1 to 59 cycles. A pass the engine
refuses (``host.golden.machine.pool_error``) is redrawn. Its output region must equal the
golden machine's, and its trace record's DRAM bytes the pass's.

``python -m host.tools.fuzz_pools -n 1000 --seed 1`` prints the counts and every failing
pass; ``--pause 0.2`` runs with random AXI pauses (cocotb, slower).
"""

import argparse
import sys
import time

import numpy as np

from hw.config import AccelConfig
from hw.contract import PoolMode
from host.compiler.pool_model import global_in_one_row, pool_pass
from host.golden.machine import _pool_counters, pool_error
from host.golden.quant import float32_bits

__all__ = ["draw_pool_pass", "fuzz_pools"]


def draw_pool_pass(rng, cfg: AccelConfig):
    """A random pass the engine accepts: :class:`hw.contract.PoolDescriptor` fields
    (addresses left out, ``multiplier`` a float)."""
    while True:
        c = int(rng.integers(1, 6))
        extra = int(rng.integers(0, 3))             # pitch above the dense one
        draw = rng.random()
        if draw < 0.75:
            mode = PoolMode.MAX if draw < 0.6 else PoolMode.AVG
            h, w = int(rng.integers(1, 24)), int(rng.integers(1, cfg.line_buffer_depth + 1))
            k = int(rng.integers(1, 18))
            s, pad = int(rng.integers(1, 18)), int(rng.integers(0, k))
            p = pool_pass(mode, c, h, w, k, s, pad, ceil_mode=bool(rng.integers(0, 2)),
                          zero_point=int(rng.integers(0, 256)), in_pitch=w + extra,
                          in_channel_pitch=h * (w + extra) + extra)
            if p["out_height"] < 1 or p["out_width"] < 1:
                continue
            p = {**p, "out_pitch": p["out_width"] + extra,
                 "out_channel_pitch": p["out_height"] * (p["out_width"] + extra) + extra}
        else:
            mode = PoolMode.GLOBAL
            h = int(rng.integers(1, 20))
            w = int(rng.integers(1, 40)) if rng.random() < 0.7 else int(rng.integers(1, cfg.line_buffer_depth + 1))
            if rng.random() < 0.5:                  # dense, and then often as the compiler issues it
                p = pool_pass(mode, c, h, w, zero_point=int(rng.integers(0, 256)))
                if rng.random() < 0.7:
                    p = global_in_one_row(p, cfg.line_buffer_depth)
            else:
                p = pool_pass(mode, c, h, w, zero_point=int(rng.integers(0, 256)), in_pitch=w + extra,
                              in_channel_pitch=h * (w + extra) + extra, out_channel_pitch=1 + extra)
        p["multiplier"] = 0.0 if mode == PoolMode.MAX else float(np.float32(rng.uniform(0.001, 0.5)))
        fields = {**p, "input_addr": 0, "output_addr": 0, "multiplier": float32_bits(p["multiplier"])}
        if pool_error(cfg, fields, (0, 1 << 40)) == 0:
            return p


def fuzz_pools(n, seed=1, cfg=AccelConfig(), *, pause=0.0, progress=None):
    """Run ``n`` random passes (:func:`draw_pool_pass`); returns ``{"passes", "modes",
    "failures": [(pass, what)], "seconds"}``."""
    from host.runtime.sim import run_pool
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    modes, failures = {}, []
    for index in range(n):
        p = draw_pool_pass(rng, cfg)
        x = rng.integers(0, 256, p["in_channel_pitch"] * p["channels"], dtype=np.uint8)
        latency = int(rng.integers(1, 60))
        got, record, expected = run_pool(cfg, p, x, latency=latency, pause=pause, seed=seed + index)
        modes[p["mode"].name] = modes.get(p["mode"].name, 0) + 1
        counters = _pool_counters(p)
        if not np.array_equal(got, expected):
            failures.append((p, f"{int((got != expected).sum())} output bytes differ (latency {latency})"))
        elif (record["dram_read_bytes"], record["dram_write_bytes"]) != (counters["dram_read_bytes"],
                                                                          counters["dram_write_bytes"]):
            failures.append((p, f"DRAM bytes {record['dram_read_bytes']} / {record['dram_write_bytes']}, "
                                f"expected {counters['dram_read_bytes']} / {counters['dram_write_bytes']}"))
        if progress:
            progress(index + 1, len(failures))
    return {"passes": n, "modes": modes, "failures": failures, "seconds": time.perf_counter() - start}


def main(argv=None):
    """``python -m host.tools.fuzz_pools``: random pooling passes through the RTL; exit
    status 1 on a failure."""
    parser = argparse.ArgumentParser(prog="python -m host.tools.fuzz_pools", description=main.__doc__)
    parser.add_argument("-n", type=int, default=200, help="passes (default 200)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pause", type=float, default=0.0, help="random AXI pause probability (cocotb)")
    import gen
    gen.add_config_arguments(parser)        # --kp, --yp, --dsp-packing, every buffer depth
    args = parser.parse_args(argv)
    cfg = gen.config_from_arguments(parser, args)
    result = fuzz_pools(args.n, args.seed, cfg, pause=args.pause)
    print(f"{result['passes']} passes ({', '.join(f'{m} {c}' for m, c in sorted(result['modes'].items()))}): "
          f"{result['passes'] - len(result['failures'])} exact, {len(result['failures'])} failed, "
          f"{result['seconds']:.1f} s")
    for p, what in result["failures"]:
        print(f"  {what}: {p}")
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
