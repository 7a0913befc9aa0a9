"""The compute core end to end (no DRAM): layers' tiles against QuantConv, several layers
per simulation. Its array packs two products per DSP (``dsp_packing``); the accelerator's
tests run the default, unpacked one."""

from hw.config import AccelConfig
from hw.datapath.core import ComputeCore
from host.runtime.sim import runner

CFG = dict(kp=3, yp=4, line_buffer_depth=64, streaming_buffer_depth=4096,
           stationary_buffer_depth=256, output_buffer_depth=2048, dsp_packing=True)

LAYERS = {
    # a whole L3 tile: C=16, K=8, 12x12, stride 1, padding 1
    "3x3_single_tile": dict(layer=dict(c=16, k=8, h=12, w=12, kernel=3, stride=1, padding=1)),
    "3x3_tiled_every_dim": dict(layer=dict(c=10, k=7, h=13, w=11, kernel=3, stride=1, padding=1),
                                tiles=dict(k=4, c=4, xo=5, yo=6), table=True),
    "3x3_stride2_no_pad": dict(layer=dict(c=5, k=5, h=15, w=14, kernel=3, stride=2, padding=0),
                               tiles=dict(k=3, c=3, xo=3, yo=4)),
}

# 1x1 layers, channel-packed: channels 9b .. 9b + 8 on the nine DPE lanes
POINTWISE = {
    "1x1_c1_flat": dict(layer=dict(c=1, k=5, h=7, w=9, kernel=1, stride=1, padding=0)),
    "1x1_c8_stride2": dict(layer=dict(c=8, k=7, h=6, w=10, kernel=1, stride=2, padding=0),
                           tiles=dict(k=4, c=8, xo=2, yo=3), table=True),
    "1x1_c9_rows": dict(layer=dict(c=9, k=4, h=5, w=7, kernel=1, stride=1, padding=0),
                        tiles=dict(k=4, c=9, xo=2, yo=3)),
    "1x1_c10_flat_split_c": dict(layer=dict(c=10, k=6, h=6, w=7, kernel=1, stride=1, padding=0),
                                 tiles=dict(k=6, c=9, xo=3, yo=7)),
    "1x1_c17_stride2": dict(layer=dict(c=17, k=3, h=9, w=9, kernel=1, stride=2, padding=0),
                            tiles=dict(k=3, c=18, xo=5, yo=5)),
    "1x1_c64_flat_split_kc": dict(layer=dict(c=64, k=8, h=4, w=6, kernel=1, stride=1, padding=0),
                                  tiles=dict(k=5, c=27, xo=4, yo=6), table=True),
}


def run_layers(specs, pause=0.0, seed=1):
    return runner.run(ComputeCore(AccelConfig(**CFG)), name="core_small", test_module="sim_tests.core_tb",
                      params={"cfg": CFG, "seed": seed, "pause": pause, "layers": specs}, result=True)


def check(stats):
    for s in stats:
        assert 0 < s["busy_cycles"] <= s["cycles"]


def test_3x3_layers():
    check(run_layers(list(LAYERS.values()), seed=3))


def test_pointwise_layers():
    """C in {1, 8, 9, 10, 17, 64}: flat and row-by-row tiles, stride 2, channel tiles of
    whole blocks and a last partial block, K split, after a 3x3 layer (the core switches
    between the line buffer and the pointwise reader)."""
    check(run_layers([LAYERS["3x3_stride2_no_pad"], *POINTWISE.values(), LAYERS["3x3_single_tile"]],
                     seed=4))


def test_layers_with_pauses():
    check(run_layers([LAYERS["3x3_tiled_every_dim"], POINTWISE["1x1_c17_stride2"],
                      POINTWISE["1x1_c10_flat_split_c"]], pause=0.3, seed=9))
