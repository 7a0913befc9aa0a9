import pytest

from hw.datapath.dpe import DPE
from host.runtime.sim import runner


@pytest.mark.parametrize("pause", [0.0, 0.3])
def test_dpe(pause):
    runner.run(DPE(), name="dpe", test_module="sim_tests.dpe_tb",
             params={"seed": 11 + int(pause * 10), "pause": pause, "count": 400})
