import pytest

from hw.datapath.dpe_array import DPEArray
from host.runtime.sim import runner


def lanes_of(kp, yp):
    """The 4x2 array is built with three window lanes (one build serves both tests)."""
    return 3 if (kp, yp) == (4, 2) else 1


def build_name(kp, yp, lanes, packed):
    return f"dpe_array_{kp}x{yp}_lanes{lanes}" + ("_packed" if packed else "")


# with dsp_packing (two products per multiplication): 4 pairs a row at 8 x 8, one at 4 x 2
@pytest.mark.parametrize("kp,yp,packed", [(1, 1, False), (3, 4, False), (4, 2, False), (8, 8, True),
                                          (4, 2, True)])
@pytest.mark.parametrize("pause", [0.0, 0.25])
def test_dpe_array(kp, yp, packed, pause):
    """Sums equal the golden model's, extreme operands included, under random gaps and
    backpressure."""
    lanes = lanes_of(kp, yp)
    runner.run(DPEArray(kp=kp, yp=yp, tag_width=8, lanes=lanes, dsp_packing=packed),
               name=build_name(kp, yp, lanes, packed), test_module="sim_tests.dpe_array_tb",
               params={"kp": kp, "yp": yp, "lanes": lanes, "dsp_packing": packed,
                       "seed": kp * 100 + yp + int(pause * 4) + 50 * packed, "sets": 6, "beats_per_set": 5,
                       "pause": pause})


@pytest.mark.parametrize("depthwise", [0, 1])
def test_lanes(depthwise):
    """Three window lanes on four rows: every row takes lane 0, or in depthwise mode row k
    takes lane k (row 3, past the lanes, lane 0)."""
    runner.run(DPEArray(kp=4, yp=2, tag_width=8, lanes=3), name="dpe_array_4x2_lanes3",
               test_module="sim_tests.dpe_array_tb",
               params={"kp": 4, "yp": 2, "lanes": 3, "depthwise": depthwise, "seed": 9 + depthwise,
                       "sets": 5, "beats_per_set": 4, "pause": 0.2})


def test_single_beat_weight_sets():
    """A new kernel set on every beat (1x1 image): still one beat per cycle."""
    runner.run(DPEArray(kp=3, yp=4, tag_width=8), name="dpe_array_3x4_lanes1",
             test_module="sim_tests.dpe_array_tb",
             params={"kp": 3, "yp": 4, "seed": 5, "sets": 12, "beats_per_set": 1})


@pytest.mark.parametrize("depthwise", [0, 1])
def test_packed_lanes(depthwise):
    """The packed array's rows take their own lanes in depthwise mode, as the DPEs do."""
    runner.run(DPEArray(kp=4, yp=2, tag_width=8, lanes=3, dsp_packing=True),
               name="dpe_array_4x2_lanes3_packed", test_module="sim_tests.dpe_array_tb",
               params={"kp": 4, "yp": 2, "lanes": 3, "dsp_packing": True, "depthwise": depthwise,
                       "seed": 19 + depthwise, "sets": 5, "beats_per_set": 4, "pause": 0.2})


@pytest.mark.parametrize("kwargs", [{"kp": 0, "yp": 1}, {"kp": 1, "yp": 65}, {"kp": 1, "yp": 1, "tag_width": 0},
                                    {"kp": 2, "yp": 1, "lanes": 3}])
def test_bad_parameters(kwargs):
    with pytest.raises(ValueError, match="must be in"):
        DPEArray(**kwargs)

