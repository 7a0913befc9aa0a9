"""The planner's cycle and byte model against the accelerator in Verilator (fast engine).

One small layer of each kind, none of them in the set the timing constants were fitted
to (``bench.model_validation.FITTED``): DRAM bytes and array-busy cycles are exact,
cycles within 5%. ``python -m bench.model_validation`` checks many more.
"""

import numpy as np
import pytest

from host.runtime.sim.layers import random_layer
from host.compiler.planner import ConvShape, descriptor_for, model, plan
from host.runtime.sim import run_conv
from hw.config import AccelConfig

# (C, K, H, W, kernel, stride, padding, tiles); None: the planner's tiles
CASES = {
    "3x3 s1": (32, 24, 16, 16, 3, 1, 1, {"k": 12, "c": 16, "xo": 8, "yo": 16}),
    "3x3 s1 planned": (64, 12, 14, 14, 3, 1, 1, None),
    "3x3 s2": (40, 36, 18, 18, 3, 2, 1, None),
    "1x1 s1 flat": (48, 64, 28, 28, 1, 1, 0, None),
    "1x1 s1 rows": (64, 48, 12, 20, 1, 1, 0, {"k": 24, "c": 27, "xo": 3, "yo": 12}),
    "1x1 s2": (72, 48, 16, 16, 1, 2, 0, None),
    "fc": (640, 250, 1, 1, 1, 1, 0, None),
    "fc batch 4": (256, 300, 1, 4, 1, 1, 0, None),
}


def test_cases_are_held_out():
    from bench.model_validation import FITTED
    fitted = {tuple(case[:7]) for case in FITTED}
    assert not fitted & {tuple(case[:7]) for case in CASES.values()}


@pytest.mark.parametrize("name", sorted(CASES))
def test_model_within_5_percent(name):
    c, k, h, w, r, s, p, tiles = CASES[name]
    cfg = AccelConfig()
    layer = ConvShape(c, k, h, w, r, s, p)
    tiles = tiles or plan(cfg, layer).tiles
    rng = np.random.default_rng(11)
    conv = random_layer(rng, c, k, r, s, p)
    x = rng.integers(0, 256, size=(1, c, h, w), dtype=np.uint8)
    y, counters = run_conv(cfg, conv, x, tiles, latency=50)
    assert np.array_equal(y, conv(x))
    m = model(cfg, descriptor_for(layer, tiles))
    assert m["dram_read_bytes"] == counters["dram_read_bytes"]
    assert m["dram_write_bytes"] == counters["dram_write_bytes"]
    assert m["array_busy_cycles"] == counters["array_busy_cycles"]
    assert abs(m["cycles"] - counters["cycles"]) <= 0.05 * counters["cycles"], (tiles, m["cycles"], counters)
