from hw.control.tiler import Tiler
from host.runtime.sim import runner
from host.runtime.sim.layers import TILER_CASES, tiler_case_descriptor


def test_tiler_matches_golden_model():
    descriptors = [tiler_case_descriptor(case) for case in TILER_CASES]
    runner.run(Tiler(addr_width=40), name="tiler", test_module="sim_tests.tiler_tb",
             params={"addr_width": 40, "descriptors": descriptors, "pause": 0.3, "seed": 7})


def test_bad_addr_width():
    import pytest
    with pytest.raises(ValueError):
        Tiler(addr_width=8)
