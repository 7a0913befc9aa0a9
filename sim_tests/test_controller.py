"""The controller alone (hw.control.controller) against small models of the loop nest, the
DMA engines and the compute core: every descriptor rule, whole layers, DMA errors and
soft reset, with and without random pauses on every stream."""

import pytest

from host.runtime.sim import runner
from hw.config import AccelConfig
from hw.control.controller import Controller

# small buffers (every limit reachable with small layers), a 64-bit bus, short queues
CFG = dict(kp=3, yp=4, line_buffer_depth=64, streaming_buffer_depth=4096,
           stationary_buffer_depth=256, output_buffer_depth=2048, axi_data_width=64,
           read_route_depth=4, write_queue_depth=4)


@pytest.mark.parametrize("pause", [0.0, 0.4])
def test_controller(pause):
    runner.run(Controller(AccelConfig(**CFG)), name="controller_small",
               test_module="sim_tests.controller_tb",
               params={"cfg": CFG, "pause": pause, "seed": 5 if pause else 6, "random": 200})
