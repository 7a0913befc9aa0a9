"""The planner's cycle and byte model against the accelerator in Verilator."""

import numpy as np
import pytest

from host.runtime.sim.layers import random_layer
from host.compiler.planner import ConvShape, descriptor_for, model
from host.runtime.sim import run_conv
from hw.config import AccelConfig

# (C, K, H, W, kernel, stride, padding, tiles)
CASES = [
    (32, 24, 16, 16, 3, 1, 1, {"k": 12, "c": 16, "xo": 8, "yo": 16}),
    (64, 12, 14, 14, 3, 1, 1, {"k": 12, "c": 16, "xo": 14, "yo": 14}),
]


@pytest.mark.parametrize("case", CASES)
def test_model_within_5_percent(case):
    c, k, h, w, r, s, p, tiles = case
    cfg = AccelConfig()
    rng = np.random.default_rng(11)
    conv = random_layer(rng, c, k, r, s, p)
    x = rng.integers(0, 256, size=(1, c, h, w), dtype=np.uint8)
    y, counters = run_conv(cfg, conv, x, tiles)
    assert np.array_equal(y, conv(x))
    m = model(cfg, descriptor_for(ConvShape(c, k, h, w, r, s, p), tiles))
    assert m["dram_read_bytes"] == counters["dram_read_bytes"]
    assert m["dram_write_bytes"] == counters["dram_write_bytes"]
    assert m["array_busy_cycles"] == counters["array_busy_cycles"]
    assert abs(m["cycles"] - counters["cycles"]) <= 0.05 * counters["cycles"]
