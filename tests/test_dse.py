"""Design-space exploration: pruned search equals exhaustive search on a reduced space."""

from host.tools import dse, networks
from hw.config import AccelConfig


def test_search_equals_exhaustive_on_reduced_space():
    layers, cpu = dse.accelerator_layers(networks.resnet18())
    assert [l["name"] for l in cpu] == ["conv1"]
    shapes = [s for s in layers if s.height <= 14]
    space = {"kp": (2, 4, 8), "yp": (2, 4), "streaming_buffer_depth": (1 << 16,),
             "stationary_buffer_depth": (1 << 10, 1 << 12), "output_buffer_depth": (1 << 12, 1 << 14),
             "line_buffer_depth": (256,)}
    budget = {"LUT": 230_400, "FF": 460_800, "DSP": 400, "BRAM36": 312, "URAM": 96}
    got, ref = dse.search(shapes, space, budget), dse.exhaustive_search(shapes, space, budget)
    assert got["cycles"] == ref["cycles"]
    assert got["config"] == ref["config"]


def test_resource_model_matches_calibration():
    """The model reproduces the yosys estimates it was calibrated on: the (8, 8) array's
    DSPs plus the requantizers and the fixed logic, and the whole default accelerator."""
    r = dse.resources(AccelConfig(kp=8, yp=8))
    assert r["DSP"] == 576 + 2 * 8 + dse.FIXED["DSP"]
    assert round(dse.LUT_ARRAY_BASE + dse.LUT_PER_DPE * 12) == 1603
    for cfg, synthesized in ((AccelConfig(), (28_277, 15_911, 172, 104.5)),
                             (AccelConfig(kp=16, yp=11), (93_728, 73_593, 1_662, 215))):
        model = dse.resources(cfg)
        for name, value in zip(("LUT", "FF", "DSP"), synthesized):
            assert abs(model[name] - value) <= 0.001 * value, (cfg, name, model[name], value)
        assert abs(model["BRAM36"] - synthesized[3]) / synthesized[3] < 0.05   # not fitted


def test_cpu_layers_reported():
    _, cpu = dse.accelerator_layers(networks.mobilenet_v2())
    assert all("grouped" in l["reason"] for l in cpu) and len(cpu) == 17
