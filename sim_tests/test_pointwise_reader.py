import pytest

from hw.datapath.pointwise_reader import PointwiseReader
from host.runtime.sim import runner

LIMITS = {"max_words": 64, "max_rows": 16, "max_groups": 64, "max_channels": 16}


@pytest.mark.parametrize("yp", [3])     # beats straddle words; YP 4 runs in every accelerator test
def test_windows_latency_and_throughput(yp):
    """Strides 1 and 2, flat long rows, one-word rows, several channel images and commands
    back to back, random pauses on every stream; beats straddle words where YP is not a
    power of two."""
    runner.run(PointwiseReader(yp=yp, **LIMITS), name=f"pointwise_reader_{yp}",
               test_module="sim_tests.pointwise_reader_tb",
               params={"yp": yp, **LIMITS, "seed": 20 + yp, "commands": 24, "pause": 0.3})


@pytest.mark.parametrize("kwargs", [{"yp": 0, "max_words": 8}, {"yp": 4, "max_words": 0},
                                    {"yp": 4, "max_words": 8, "max_rows": 0}])
def test_bad_parameters(kwargs):
    with pytest.raises(ValueError, match="must be in"):
        PointwiseReader(**kwargs)
