import pytest

from hw.datapath.repacker import Repacker
from host.runtime.sim import runner


@pytest.mark.parametrize("in_bytes,out_bytes,row_bytes,rows,partial,pause", [
    (16, 16, 58, 9, False, 0.0),      # iAct rows: bus words -> row-aligned words
    (16, 16, 37, 7, True, 0.3),
    (4, 16, 50, 6, True, 0.3),        # drain: YP bytes -> bus words
    (4, 16, 9, 30, False, 0.0),       # rows shorter than a word
    (4, 16, 1, 30, True, 0.0),
])
def test_repacker(in_bytes, out_bytes, row_bytes, rows, partial, pause):
    runner.run(Repacker(in_bytes=in_bytes, out_bytes=out_bytes, max_row=4096),
             name=f"repacker_{in_bytes}_{out_bytes}", test_module="sim_tests.repacker_tb",
             params={"in_bytes": in_bytes, "out_bytes": out_bytes, "row_bytes": row_bytes,
                     "rows": rows, "partial": partial, "pause": pause,
                     "seed": row_bytes * 7 + rows})


def test_bad_parameters():
    with pytest.raises(ValueError, match="out_bytes must be in"):
        Repacker(in_bytes=4, out_bytes=0)
