import pytest

from hw.datapath.stationary_buffer import StationaryBuffer
from host.runtime.sim import runner


@pytest.mark.parametrize("pause", [0.0, 0.3])
def test_unit_major_tiles(pause):
    runner.run(StationaryBuffer(kp=3, depth=32), name="stationary_buffer_3_32",
             test_module="sim_tests.stationary_buffer_tb",
             params={"kp": 3, "depth": 32, "tiles": 16, "pause": pause, "seed": 5 + int(pause * 10)})


@pytest.mark.parametrize("kwargs", [{"kp": 0, "depth": 8}, {"kp": 3, "depth": 0}])
def test_bad_parameters(kwargs):
    with pytest.raises(ValueError, match="must be in"):
        StationaryBuffer(**kwargs)
