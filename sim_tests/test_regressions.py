"""Named regressions: layers with explicit tiles that once hung or computed wrong outputs,
each run bit-exactly against the golden model (several layers per simulation)."""

import numpy as np

from host.runtime.sim import prepare_batch, run_layers
from hw.config import AccelConfig
from hw.contract import ErrorCode
from host.runtime.sim.layers import random_conv

CFG = AccelConfig()          # the default accelerator build, shared with the other tests


def run_batch(layers, latency=20):
    """``layers``: (C, K, H, W, kernel, stride, padding, tiles); all in one simulation."""
    prepared = []
    for index, (c, k, h, w, kernel, stride, padding, tiles) in enumerate(layers):
        rng = np.random.default_rng(index + 1)
        conv = random_conv(rng, c, k, kernel, stride, padding, activation_table=index % 2 == 1)
        x = rng.integers(0, 256, size=(1, c, h, w), dtype=np.uint8)
        prepared.append((conv, x, tiles))
    runs, memory = prepare_batch(CFG, prepared)
    result = run_layers(CFG, [{"run": run} for run in runs], latency=latency, memory=memory)
    for (conv, x, tiles), run, layer in zip(prepared, runs, result["layers"]):
        name = f"{conv.in_channels}x{x.shape[2]}x{x.shape[3]} -> {conv.out_channels}, tiles {tiles}"
        assert layer["irq"], f"{name}: no interrupt"
        assert layer["error_code"] == 0, f"{name}: {ErrorCode(layer['error_code']).name}"
        got = np.asarray(layer["output"], dtype=np.uint8).reshape(run.output_shape)
        expected = conv(x)[0]
        assert (got == expected).all(), f"{name}: {int((got != expected).sum())} of {got.size} outputs differ"
        assert layer["counters"]["dram_read_bytes"] == run.read_bytes(), name
    return result


def test_tiles_with_more_rows_than_the_line_buffer_depth():
    """Row counts above line_buffer_depth (a column limit) were truncated to 9 bits: the
    first layer hung, the second finished with 1,472 of 2,700 outputs wrong. The line
    buffer now counts rows up to AccelConfig.max_tile_rows."""
    run_batch([
        (2, 3, 700, 6, 3, 1, 1, {"k": 3, "c": 2, "xo": 600, "yo": 6}),
        (1, 3, 900, 4, 3, 2, 1, {"k": 3, "c": 1, "xo": 450, "yo": 2}),
        (1, 2, 1030, 3, 3, 1, 2, {"k": 2, "c": 1, "xo": 1031, "yo": 1}),   # 1032 output rows
    ])


# Reported as hangs: tiles one or two output columns wide. Each input row is its own DMA
# read of a few bytes, bound by DRAM latency; the layers take 0.23 to 1.1 million cycles
# (latency 50), past the simulation's MAC-based timeout of the time. They were never stuck:
# the timeout (host.runtime.sim.timeout_cycles) now counts transfers (tests/test_tile_rows.py).
# (A 1x1 layer's channel tile is now a multiple of 9 or all channels.)
SHORT_ROWS = [
    (30, 14, 32, 9, 1, 2, 0, {"k": 1, "c": 27, "xo": 5, "yo": 1}),
    (30, 14, 32, 9, 3, 1, 1, {"k": 1, "c": 30, "xo": 5, "yo": 1}),
    (8, 39, 39, 34, 1, 2, 0, {"k": 1, "c": 8, "xo": 15, "yo": 2}),
    (15, 26, 33, 19, 1, 1, 0, {"k": 23, "c": 9, "xo": 3, "yo": 1}),
]


def test_short_row_tilings():
    """2.5 million cycles in all: seconds on the C++ engine, minutes on cocotb."""
    run_batch(SHORT_ROWS, latency=50)


# The fuzzer's failures on the line buffer with 9-bit row counters, minimized by
# host.tools.fuzz.minimize: 513 stored rows count as 1 (a hang; wrong outputs with stride 2).
MINIMIZED = [
    {"seed": 745348996, "c": 1, "k": 1, "h": 513, "w": 1, "kernel": 1, "stride": 1, "padding": 0,
     "z_x": 116, "s_x": 0.049391895985103434, "per_channel": False, "relu": False,
     "activation": None, "out_scale_factor": 1.0, "tiles": {"k": 1, "c": 1, "xo": 513, "yo": 1}},
    {"seed": 279046363, "c": 1, "k": 1, "h": 513, "w": 3, "kernel": 3, "stride": 2, "padding": 0,
     "z_x": 52, "s_x": 0.05877028626388429, "per_channel": False, "relu": False,
     "activation": None, "out_scale_factor": 1.0, "tiles": {"k": 1, "c": 1, "xo": 256, "yo": 1}},
]


def test_minimized_fuzzer_failures():
    from host.tools.fuzz import Case, run_cases
    report = run_cases([Case(**case) for case in MINIMIZED], CFG)
    assert report.cases == len(MINIMIZED) and report.ok, report.summary()
