"""The planner's cycle and byte model, and the pooling engine's
(``host.compiler.pool_model``), against the accelerator in Verilator (fast engine).

One small layer of each kind (with and without a fused residual addition) and one
pooling pass of each mode, none of them among those the timing constants were fitted to
(``bench/model_validation.py``: ``FITTED``, ``POOL_FITTED``): DRAM bytes and array-busy
cycles are exact, cycles within 5%. ``python -m bench.model_validation`` checks many more.
"""

import numpy as np
import pytest

from host.runtime.sim.layers import random_layer
from host.compiler.planner import ConvShape, descriptor_for, model, plan
from host.compiler.pool_model import global_in_one_row, pool_model, pool_pass
from host.golden.quant import add_fixed
from host.runtime.sim import run_conv, run_pool
from hw.config import AccelConfig
from hw.contract import PoolMode

# layer and tiles (None: the planner's)
CASES = {
    "3x3 s1": (ConvShape(32, 24, 16, 16), {"k": 12, "c": 16, "xo": 8, "yo": 16}),
    "3x3 s1 planned": (ConvShape(64, 12, 14, 14), None),
    "3x3 s2": (ConvShape(40, 36, 18, 18, 3, 2, 1), None),
    "depthwise s1": (ConvShape(40, 40, 16, 16, 3, 1, 1, depthwise=True), None),
    "depthwise s2": (ConvShape(72, 72, 20, 20, 3, 2, 1, depthwise=True), None),
    "1x1 s1 flat": (ConvShape(48, 64, 28, 28, 1, 1, 0), None),
    "1x1 s1 rows": (ConvShape(64, 48, 12, 20, 1, 1, 0), {"k": 24, "c": 27, "xo": 3, "yo": 12}),
    "1x1 s2": (ConvShape(72, 48, 16, 16, 1, 2, 0), None),
    "fc": (ConvShape(640, 250, 1, 1, 1, 1, 0), None),
    "fc batch 4": (ConvShape(256, 300, 1, 4, 1, 1, 0), None),
    # fused residual additions, the planner's tiles (whole output rows)
    "3x3 s1 +add": (ConvShape(48, 48, 14, 14, residual=True), None),
    "1x1 s1 +add": (ConvShape(32, 96, 20, 20, 1, 1, 0, residual=True), None),
    "1x1 s1 +add split": (ConvShape(24, 64, 16, 16, 1, 1, 0, residual=True), {"k": 20, "c": 24, "xo": 5, "yo": 16}),
    "3x3 s2 +add": (ConvShape(24, 40, 21, 21, 3, 2, 1, residual=True), None),
}

POOLS = {
    "max 3x3 s2": pool_pass(PoolMode.MAX, 20, 40, 40, 3, 2, 1),
    "max 3x3 s1 ceil": pool_pass(PoolMode.MAX, 12, 19, 19, 3, 2, 0, ceil_mode=True),
    "avg 3x3 s1": pool_pass(PoolMode.AVG, 10, 24, 24, 3, 1, 1),
    "global": pool_pass(PoolMode.GLOBAL, 160, 7, 7),
    "global in one row": global_in_one_row(pool_pass(PoolMode.GLOBAL, 160, 7, 7), 256),
    "copy": pool_pass(PoolMode.COPY, 3, 45, 45, in_pitch=90, out_pitch=48, in_channel_pitch=90 * 90,
                      out_channel_pitch=48 * 48),
}


def random_conv(rng, layer):
    return random_layer(rng, layer.channels, layer.kernels, layer.kernel_size, layer.stride,
                        layer.padding, groups=layer.channels if layer.depthwise else 1)


@pytest.mark.parametrize("name", sorted(CASES))
def test_model_within_5_percent(name):
    layer, tiles = CASES[name]
    cfg = AccelConfig()
    tiles = tiles or plan(cfg, layer).tiles
    rng = np.random.default_rng(11)
    conv = random_conv(rng, layer)
    x = rng.integers(0, 256, size=(1, layer.channels, layer.height, layer.width), dtype=np.uint8)
    expected, residual = conv(x), None
    if layer.residual:
        residual = {"tensor": rng.integers(0, 256, size=expected.shape[1:], dtype=np.uint8), "ma": 1 << 20,
                    "mb": 5 << 18, "shift": 21, "za": 9, "zb": 200, "zo": 31, "lo": 31}
        expected = add_fixed(expected[0], residual["tensor"],
                             **{n: residual[n] for n in ("ma", "mb", "shift", "za", "zb", "zo", "lo")})[None]
    y, counters = run_conv(cfg, conv, x, tiles, latency=50, residual=residual)
    assert np.array_equal(y, expected)
    m = model(cfg, descriptor_for(layer, tiles))
    assert m["dram_read_bytes"] == counters["dram_read_bytes"]
    assert m["dram_write_bytes"] == counters["dram_write_bytes"]
    assert m["array_busy_cycles"] == counters["array_busy_cycles"]
    assert abs(m["cycles"] - counters["cycles"]) <= 0.05 * counters["cycles"], (tiles, m["cycles"], counters)


@pytest.mark.parametrize("name", sorted(POOLS))
def test_pool_model_within_5_percent(name):
    p, cfg = POOLS[name], AccelConfig()
    x = np.random.default_rng(5).integers(0, 256, p["in_channel_pitch"] * p["channels"], dtype=np.uint8)
    got, record, expected = run_pool(cfg, p, x, latency=50)
    assert np.array_equal(got, expected)
    m = pool_model(cfg, p)
    assert (m["dram_read_bytes"], m["dram_write_bytes"]) == (record["dram_read_bytes"], record["dram_write_bytes"])
    assert abs(m["cycles"] - record["cycles"]) <= 0.05 * record["cycles"], (m["cycles"], record["cycles"])
