"""AXI4-Lite register bank (hw.control.csr) against the register map, with and without pauses."""

import pytest

from host.runtime.sim import runner
from hw.config import AccelConfig
from hw.control.csr import CsrBank
from hw.contract import register_map


@pytest.mark.parametrize("pause", [0.0, 0.4])
def test_csr_bank_register_kinds(pause):
    runner.run(CsrBank(register_map(AccelConfig())), name="csr_bank",
               test_module="sim_tests.csr_tb", params={"pause": pause, "seed": 3})


def test_csr_window_too_small_is_refused():
    with pytest.raises(ValueError, match="addr_width must cover"):
        CsrBank(register_map(AccelConfig()), addr_width=4)
