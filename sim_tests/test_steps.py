import pytest

from hw.control.steps import StepWalker
from host.golden import tiling
from host.runtime.sim import runner
from host.runtime.sim.layers import TILER_CASES, tiler_case_descriptor


def descriptors():
    base = dict(input_addr=0, weight_addr=0, params_addr=0, output_addr=0)
    shapes = [
        dict(channels=300, height=40, width=37, kernels=70, tile_k=16, tile_c=64, tile_xo=7, tile_yo=9),
        dict(channels=3, height=20, width=17, kernels=13, kernel_size=3, stride=2, padding=1,
             tile_k=7, tile_c=2, tile_xo=4, tile_yo=5),
        dict(channels=9, height=9, width=10, kernels=6, kernel_size=1, stride=2, padding=0,
             tile_k=6, tile_c=9, tile_xo=5, tile_yo=3),
        # 1x1: T_YO past YO (flat), then output rows wider than YO (not flat)
        dict(channels=12, height=5, width=6, kernels=3, kernel_size=1, stride=1, padding=0,
             tile_c=9, tile_xo=2, tile_yo=9),
        dict(channels=12, height=5, width=6, kernels=3, kernel_size=1, stride=1, padding=0,
             tile_c=9, tile_xo=2, out_pitch=7),
        # 1x1 stride 2, odd height: the last tile's rows clipped; T_C of 33 blocks, then 3 channels
        dict(channels=300, height=9, width=8, kernels=5, kernel_size=1, stride=2, padding=0,
             tile_k=2, tile_c=297, tile_xo=2, tile_yo=3),
        # depthwise: one step per output tile, c0 = k0
        dict(channels=7, height=6, width=6, kernels=7, kernel_size=3, stride=2, padding=2,
             tile_k=3, tile_c=3, tile_xo=2, tile_yo=4, depthwise=1),
        dict(channels=5, height=6, width=7, kernels=4, kernel_size=3, stride=1, padding=2,
             tile_k=4, tile_c=5, tile_xo=1, tile_yo=1),              # one output per tile
    ]
    return [tiler_case_descriptor(case) for case in TILER_CASES] + [
        tiling.descriptor(**base, **shape) for shape in shapes]


@pytest.mark.parametrize("depth", [1, 3])
def test_step_walker_matches_golden_steps(depth):
    runner.run(StepWalker(depth=depth), name=f"step_walker_{depth}", test_module="sim_tests.steps_tb",
               params={"descriptors": descriptors(), "pause": 0.5, "seed": 11})


def test_bad_depth():
    with pytest.raises(ValueError):
        StepWalker(depth=0)
