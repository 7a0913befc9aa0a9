import pytest

from hw.datapath.streaming_buffer import StreamingBuffer
from host.runtime.sim import runner


def run(**params):
    runner.run(StreamingBuffer(word_bytes=16, depth=32), name="streaming_buffer_16_32",
             test_module="sim_tests.streaming_buffer_tb",
             params={"word_bytes": 16, "depth": 32, **params})


@pytest.mark.parametrize("pause", [0.0, 0.3])
def test_random_tiles_and_replay_counts(pause):
    run(seed=7 + int(pause * 10), tiles=8, pause=pause)


def test_loads_overlap_replays():
    run(seed=3, tiles=6, replays=2, steady=True)


@pytest.mark.parametrize("kwargs", [{"word_bytes": 0, "depth": 8}, {"word_bytes": 8, "depth": 1}])
def test_bad_parameters(kwargs):
    with pytest.raises(ValueError, match="must be in"):
        StreamingBuffer(**kwargs)
