import pytest

from hw.datapath.streaming_buffer import StreamingBuffer
from host.runtime.sim import runner

SB = {"word_bytes": 16, "depth": 12, "max_rows": 64}


def run(testcase=None, **params):
    runner.run(StreamingBuffer(**SB), name="streaming_buffer_16_12",
               test_module="sim_tests.streaming_buffer_tb", testcase=testcase,
               params={**SB, **params})


@pytest.mark.parametrize("pause", [0.0, 0.3])
def test_random_tiles_both_orders(pause):
    run("tiles", seed=7 + int(pause * 10), tiles=24, pause=pause)


def test_loads_overlap_replays_and_latency():
    run(["steady", "latency"], seed=3)


@pytest.mark.parametrize("kwargs", [{"word_bytes": 0, "depth": 8}, {"word_bytes": 8, "depth": 0},
                                    {"word_bytes": 8, "depth": 8, "max_rows": 0}])
def test_bad_parameters(kwargs):
    with pytest.raises(ValueError, match="must be in"):
        StreamingBuffer(**kwargs)
