import pytest

from host.golden import tiling
from hw.config import AccelConfig
from hw.datapath.core import ComputeCore
from hw.control.sequencer import Sequencer
from host.runtime.sim import runner

CFG = dict(kp=3, yp=4, line_buffer_depth=64, streaming_buffer_depth=4096,
           stationary_buffer_depth=256, output_buffer_depth=2048)


def descriptors():
    base = dict(input_addr=0x1000, weight_addr=0x9000, params_addr=0xA000, output_addr=0xB000)
    shapes = [
        dict(channels=16, height=12, width=12, kernels=8, kernel_size=3, stride=1, padding=1),
        dict(channels=10, height=13, width=11, kernels=7, kernel_size=3, stride=1, padding=1,
             tile_k=4, tile_c=4, tile_xo=5, tile_yo=6),
        dict(channels=5, height=15, width=14, kernels=5, kernel_size=3, stride=2, padding=0,
             tile_k=3, tile_c=3, tile_xo=3, tile_yo=4),
        dict(channels=9, height=9, width=10, kernels=6, kernel_size=1, stride=2, padding=0,
             tile_k=6, tile_c=9, tile_xo=5, tile_yo=3),
        dict(channels=3, height=20, width=17, kernels=13, kernel_size=3, stride=2, padding=1,
             tile_k=7, tile_c=2, tile_xo=4, tile_yo=5),
        dict(channels=1, height=3, width=3, kernels=1, kernel_size=3, stride=1, padding=0),
        # 1x1: flat tiles (full width, stride 1), split in K, C and rows
        dict(channels=20, height=6, width=7, kernels=8, kernel_size=1, stride=1, padding=0,
             tile_k=4, tile_c=9, tile_xo=2, tile_yo=7),
        # 1x1: one flat tile of 108 pixels (groups counted 16 at a time), C % 9 == 1
        dict(channels=10, height=9, width=12, kernels=5, kernel_size=1, stride=1, padding=0),
        # 1x1: row by row (T_YO < YO), T_C > C
        dict(channels=17, height=6, width=10, kernels=7, kernel_size=1, stride=1, padding=0,
             tile_k=7, tile_c=18, tile_xo=3, tile_yo=4),
        # 1x1: stride 2 (two rows read per output row), odd sizes
        dict(channels=19, height=11, width=13, kernels=4, kernel_size=1, stride=2, padding=0,
             tile_k=3, tile_c=9, tile_xo=3, tile_yo=4),
        # 1x1: pitched rows, not flat
        dict(channels=9, height=4, width=6, kernels=3, kernel_size=1, stride=1, padding=0,
             in_pitch=8),
        # depthwise 3x3: KP channels at once
        dict(channels=6, height=8, width=9, kernels=6, kernel_size=3, stride=1, padding=1,
             tile_k=4, tile_c=4, tile_xo=3, tile_yo=5, depthwise=1),
    ]
    return [tiling.descriptor(**base, **s) for s in shapes]


@pytest.mark.parametrize("pause", [0.0, 0.4])
def test_sequencer_matches_schedule(pause):
    runner.run(Sequencer(ComputeCore(AccelConfig(**CFG))), name="sequencer_small",
             test_module="sim_tests.sequencer_tb",
             params={"cfg": CFG, "descriptors": descriptors(), "pause": pause, "seed": 4})
