"""The planner's cycle and byte model against the accelerator in Verilator (fast engine).

One small layer of each kind, none of them among the layers the timing constants were
fitted to (``bench/model_validation.py``, ``FITTED``): DRAM bytes and array-busy cycles
are exact, cycles within 5%. ``python -m bench.model_validation`` checks many more.
"""

import numpy as np
import pytest

from host.runtime.sim.layers import random_layer
from host.compiler.planner import ConvShape, descriptor_for, model, plan
from host.runtime.sim import run_conv
from hw.config import AccelConfig

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
    y, counters = run_conv(cfg, conv, x, tiles, latency=50)
    assert np.array_equal(y, conv(x))
    m = model(cfg, descriptor_for(layer, tiles))
    assert m["dram_read_bytes"] == counters["dram_read_bytes"]
    assert m["dram_write_bytes"] == counters["dram_write_bytes"]
    assert m["array_busy_cycles"] == counters["array_busy_cycles"]
    assert abs(m["cycles"] - counters["cycles"]) <= 0.05 * counters["cycles"], (tiles, m["cycles"], counters)
