import pytest

from hw.datapath.requant import Requantizer
from host.runtime.sim import runner


@pytest.mark.parametrize("pause,table", [(0.0, False), (0.3, True)])
def test_requantizer(pause, table):
    runner.run(Requantizer(), name="requant", test_module="sim_tests.requant_tb",
             params={"seed": 3 + int(table), "count": 4000, "pause": pause, "table": table})
