import pytest

from hw.datapath.output_buffer import OutputBuffer
from host.runtime.sim import runner

# builds: (kp, yp, depth, max_dim, drain_words)
CONFIGS = {"3x4": (3, 4, 64, 64, 1), "2x3": (2, 3, 32, 16, 1), "3x4d4": (3, 4, 64, 64, 4)}


def run(config, **params):
    kp, yp, depth, max_dim, drain_words = CONFIGS[config]
    runner.run(OutputBuffer(kp=kp, yp=yp, depth=depth, max_dim=max_dim, drain_words=drain_words),
             name=f"output_buffer_{config}", test_module="sim_tests.output_buffer_tb",
             params={"kp": kp, "yp": yp, "depth": depth, "max_dim": max_dim,
                     "drain_words": drain_words, **params})


@pytest.mark.parametrize("config,pause,table", [("3x4", 0.0, False), ("3x4", 0.3, True),
                                                ("2x3", 0.3, True), ("3x4d4", 0.3, True),
                                                ("3x4d4", 0.0, False)])
def test_random_tiles(config, pause, table):
    """Several output tiles of several passes; T_K, T_YO not multiples of KP, YP; init
    with and without accumulation; random valid gaps and out backpressure; random tables."""
    run(config, seed=11 + int(pause * 10) + len(config), tiles=10, pause=pause, table=table)


@pytest.mark.parametrize("config", ["3x4", "3x4d4"])
def test_double_buffer_overlap(config):
    """No pauses: accumulation never waits and overlaps the previous tile's drain."""
    run(config, seed=7, scenario="overlap", tiles=5, table=True)


@pytest.mark.parametrize("config", ["2x3", "3x4"])
def test_same_address_back_to_back_and_int32_wrap(config):
    run(config, seed=3, scenario="same_address", table=False)


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
@pytest.mark.parametrize("kwargs,name", [
    ({"kp": 0, "yp": 4, "depth": 64}, "kp"),
    ({"kp": 3, "yp": 65, "depth": 64}, "yp"),
    ({"kp": 3, "yp": 4, "depth": 0}, "depth"),
    ({"kp": 3, "yp": 4, "depth": 64, "max_dim": 0}, "max_dim"),
    ({"kp": 3, "yp": 4, "depth": 64, "max_dim": 70000}, "max_dim"),
    ({"kp": 3, "yp": 4, "depth": 64.0}, "depth"),
    ({"kp": 3, "yp": 4, "depth": 64, "drain_words": 3}, "drain_words"),
])
def test_bad_parameters(kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name} must be (an integer |a power of two )?in \["):
        OutputBuffer(**kwargs)


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_positional_arguments_refused():
    with pytest.raises(TypeError):
        OutputBuffer(3, 4, 64)
