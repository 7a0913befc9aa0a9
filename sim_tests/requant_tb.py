"""cocotb testbench of hw.datapath.requant.Requantizer against host.golden.quant.requantize."""

import cocotb
import numpy as np

from host.golden.quant import requantize, wrap_int32
from hw.datapath.requant import requant_input_layout, table_write_layout
from host.runtime.sim.runner import params
from host.runtime.sim.streams import (StreamSink, StreamSource, finish, random_pauses, seeded_rng,
                          start_clock_and_reset)


def vectors(nrng, count):
    """Random accumulators and multipliers, plus the corner cases of every rounding."""
    acc = nrng.integers(-(1 << 31), 1 << 31, size=count, dtype=np.int64)
    scale = nrng.integers(0, 31, size=count)
    acc = acc >> scale                                      # all magnitudes
    mult = np.exp2(nrng.uniform(-34, 2, size=count)).astype(np.float32)
    cases = []
    for s in range(1, 20):                                  # p = k + 0.5 exactly: ties
        for k in (0, 1, 2, 3, -1, -2, 100, 101):
            cases.append(((2 * k + 1) << (s - 1), np.float32(2.0 ** -s)))
    for base in (1 << 25, 1 << 28, (1 << 31) - 256):        # int -> float32 ties
        for off in (1, 2, 3, 6, 64, 128, 192):
            cases += [(base + off, np.float32(1.0)), (-(base + off), np.float32(0.75))]
    for a in (-(1 << 31), (1 << 31) - 1, 0, 1, -1):         # int32 limits
        for m in (np.float32(1.9999999), np.float32(2.0 ** -31), np.float32(0.3), np.float32(1.5e-10)):
            cases.append((a, m))
    for a in ((1 << 30), -(1 << 30), (1 << 31) - 1):        # |p| >= 2**31: saturation
        cases.append((a, np.float32(3.0)))
    n = len(cases)
    acc[:n] = [c[0] for c in cases]
    mult[:n] = [c[1] for c in cases]
    zp = nrng.integers(0, 256, size=count)
    lo = nrng.integers(0, 256, size=count)
    hi = nrng.integers(0, 256, size=count)
    lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
    wide = nrng.random(count) < 0.5                         # half with the full range
    lo[wide], hi[wide] = 0, 255
    # half the vectors split acc into partial sum + bias (wrapping like the hardware)
    bias = np.where(nrng.random(count) < 0.5, nrng.integers(-(1 << 31), 1 << 31, size=count), 0)
    partial = wrap_int32(acc - bias)
    return partial, bias.astype(np.int32), acc.astype(np.int32), mult, zp, lo, hi


@cocotb.test()
async def requantize_vectors(dut):
    p = params()
    rng = seeded_rng(p)
    nrng = np.random.default_rng(p.get("seed", 1))
    partial, bias, acc, mult, zp, lo, hi = vectors(nrng, p.get("count", 2000))
    table = nrng.permutation(256).astype(np.uint8) if p.get("table") else None

    await start_clock_and_reset(dut)
    if table is not None:
        writer = StreamSource(dut, "table", table_write_layout)
        await writer.send([{"addr": a, "data": int(d)} for a, d in enumerate(table)])

    expected = requantize(acc, mult, zp, lo, hi, table).tolist()
    beats = [{"acc": int(a), "bias": int(b), "multiplier": int(m.view(np.uint32)),
              "zero_point": int(z), "lo": int(l), "hi": int(h)}
             for a, b, m, z, l, h in zip(partial, bias, mult, zp, lo, hi)]
    pause = p.get("pause", 0.0)
    source = StreamSource(dut, "i", requant_input_layout,
                          pause=random_pauses(rng, pause) if pause else None)
    sink = StreamSink(dut, "o", 8, pause=random_pauses(rng, pause) if pause else None)
    tasks = [source.start(beats), sink.start(len(beats))]
    await finish(tasks, dut.clk, 20 * len(beats) + 100)
    mismatches = [(i, beats[i], got, want) for i, (got, want) in enumerate(zip(sink.beats, expected))
                  if got != want]
    assert not mismatches, f"{len(mismatches)} mismatches, first: {mismatches[:3]}"
    if not pause:
        assert sink.cycles[-1] - sink.cycles[0] == len(beats) - 1
