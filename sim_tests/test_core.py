"""The compute core end to end (no DRAM): one layer's tiles against QuantConv."""

import pytest

from hw.config import AccelConfig
from hw.datapath.core import ComputeCore
from host.runtime.sim import runner

CFG = dict(kp=3, yp=4, line_buffer_depth=64, streaming_buffer_depth=4096,
           stationary_buffer_depth=256, output_buffer_depth=2048)

LAYERS = {
    # a whole L3 tile: C=16, K=8, 12x12, stride 1, padding 1
    "3x3_single_tile": dict(layer=dict(c=16, k=8, h=12, w=12, kernel=3, stride=1, padding=1)),
    "3x3_tiled_every_dim": dict(layer=dict(c=10, k=7, h=13, w=11, kernel=3, stride=1, padding=1),
                                tiles=dict(k=4, c=4, xo=5, yo=6), table=True),
    "3x3_stride2_no_pad": dict(layer=dict(c=5, k=5, h=15, w=14, kernel=3, stride=2, padding=0),
                               tiles=dict(k=3, c=3, xo=3, yo=4)),
    "1x1_stride2": dict(layer=dict(c=9, k=6, h=9, w=10, kernel=1, stride=2, padding=0),
                        tiles=dict(k=6, c=4, xo=5, yo=3)),
}


def run_layer(name, pause=0.0, seed=1):
    spec = LAYERS[name]
    return runner.run(ComputeCore(AccelConfig(**CFG)), name="core_small", test_module="sim_tests.core_tb",
                    params={"cfg": CFG, "seed": seed, "pause": pause, **spec}, result=True)


@pytest.mark.parametrize("name", list(LAYERS))
def test_layer(name):
    stats = run_layer(name, seed=len(name))
    assert stats["busy_cycles"] <= stats["cycles"]


def test_layer_with_pauses():
    run_layer("3x3_tiled_every_dim", pause=0.3, seed=9)
