import pytest

from hw.datapath.residual_add import ResidualAdd
from host.runtime.sim import runner


@pytest.mark.parametrize("pause", [0.0, 0.3])
def test_residual_add(pause):
    runner.run(ResidualAdd(lanes=16), name="residual_add_16", test_module="sim_tests.residual_add_tb",
               params={"lanes": 16, "cases": 8, "pause": pause, "seed": 5 + int(10 * pause)})


def test_bad_parameters():
    with pytest.raises(ValueError, match="lanes must be in"):
        ResidualAdd(lanes=0)
