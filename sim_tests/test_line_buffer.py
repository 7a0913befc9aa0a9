import pytest

from hw.datapath.line_buffer import LineBuffer
from host.runtime.sim import runner


def run(yp, max_row, lanes=None, **params):
    lanes = lanes or (3 if yp == 4 else 1)      # one build per YP; lanes beyond 0 are checked too
    runner.run(LineBuffer(yp=yp, max_row=max_row, lanes=lanes), name=f"line_buffer_{yp}_{max_row}_{lanes}",
             test_module="sim_tests.line_buffer_tb",
             params={"yp": yp, "max_row": max_row, "lanes": lanes, **params})


@pytest.mark.parametrize("yp", [4, 3])
@pytest.mark.parametrize("pause", [0.0, 0.3])
def test_random_tiles(yp, pause):
    """Strides 1 and 2, 1x1 and 3x3, every padding combination, widths not multiples of YP."""
    run(yp, 40, seed=yp * 10 + int(pause * 10), passes=14, pause=pause)


def test_no_bubbles_across_channels_and_passes():
    run(4, 40, seed=5, steady=True)


def test_lanes():
    """Three lanes (a depthwise kernel group): each lane's windows from its own rows."""
    run(4, 40, lanes=3, seed=21, passes=8, pause=0.2)


@pytest.mark.parametrize("kwargs", [{"yp": 0, "max_row": 64}, {"yp": 4, "max_row": 5},
                                    {"yp": 4, "max_row": 5000}, {"yp": 4, "max_row": 64, "lanes": 10}])
def test_bad_parameters(kwargs):
    with pytest.raises(ValueError, match="must be in"):
        LineBuffer(**kwargs)
