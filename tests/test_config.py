import dataclasses

import pytest

from hw.config import AccelConfig


def test_default_is_demo_shape():
    cfg = AccelConfig()
    assert (cfg.kp, cfg.yp) == (3, 4)
    assert cfg.macs_per_cycle == 108
    assert AccelConfig.from_dict(cfg.to_dict()) == cfg


def test_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        AccelConfig().kp = 4


@pytest.mark.parametrize("name,value,allowed", [
    ("kp", 0, "[1, 64]"), ("kp", 65, "[1, 64]"), ("kp", 2.5, "[1, 64]"), ("kp", True, "[1, 64]"),
    ("yp", 0, "[1, 64]"), ("yp", 100, "[1, 64]"),
    ("line_buffer_depth", 7, "[8, 4096]"), ("line_buffer_depth", 5000, "[8, 4096]"),
    ("streaming_buffer_depth", 128, "[256, 4194304]"),
    ("streaming_buffer_depth", 3000, "power of two"),
    ("stationary_buffer_depth", 8, "[16, 1048576]"),
    ("stationary_buffer_depth", 100, "power of two"),
    ("output_buffer_depth", 32, "[64, 4194304]"),
    ("output_buffer_depth", 1000, "power of two"),
    ("axi_data_width", 32, "(64, 128, 256, 512)"), ("axi_data_width", 96, "(64, 128, 256, 512)"),
    ("axi_addr_width", 31, "[32, 64]"), ("axi_addr_width", 65, "[32, 64]"),
    ("max_outstanding_reads", 3, "[4, 32]"), ("max_outstanding_reads", 33, "[4, 32]"),
    ("max_outstanding_writes", 0, "[1, 32]"), ("max_outstanding_writes", 33, "[1, 32]"),
    ("max_outstanding_writes", 8.0, "[1, 32]"),
    ("read_buffer_depth", 256, "[512, 8192]"), ("read_buffer_depth", 16384, "[512, 8192]"),
    ("read_buffer_depth", 768, "power of two"),
    ("read_route_depth", 1, "[2, 1024]"), ("read_route_depth", 2048, "[2, 1024]"),
    ("write_queue_depth", 1, "[2, 4096]"), ("write_queue_depth", 5000, "[2, 4096]"),
    ("sequencer_queue_depth", 1, "[2, 64]"), ("sequencer_queue_depth", 65, "[2, 64]"),
    ("line_buffer_slots", 4, "[8, 32]"), ("line_buffer_slots", 64, "[8, 32]"),
    ("line_buffer_slots", 12, "power of two"),
    ("csr_addr_width", 11, "[12, 16]"), ("csr_addr_width", 17, "[12, 16]"),
    ("csr_addr_width", "12", "[12, 16]"),
])
def test_invalid_values_name_parameter_value_and_range(name, value, allowed):
    with pytest.raises(ValueError) as info:
        AccelConfig(**{name: value})
    message = str(info.value)
    assert name in message
    assert f"got {value!r}" in message
    assert allowed in message


@pytest.mark.parametrize("kwargs,name", [
    ({"kp": 64, "yp": 64, "output_buffer_depth": 2048}, "output_buffer_depth"),
    ({"kp": 64, "stationary_buffer_depth": 32}, "stationary_buffer_depth"),
    ({"yp": 64, "line_buffer_depth": 32}, "line_buffer_depth"),
    # a streaming-buffer word is 9 row words of word_bytes_for(yp) = 256 bytes
    ({"yp": 64, "streaming_buffer_depth": 2048}, "streaming_buffer_depth must be at least 2304"),
])
def test_cross_field_limits(kwargs, name):
    with pytest.raises(ValueError, match=name):
        AccelConfig(**kwargs)


def test_from_dict_rejects_unknown_fields():
    with pytest.raises(ValueError, match="unknown AccelConfig fields"):
        AccelConfig.from_dict({"kp": 3, "kq": 4})


def test_derived_limits():
    cfg = AccelConfig()
    assert cfg.csr_window == 0x1000
    assert AccelConfig(csr_addr_width=16).csr_window == 0x10000
    # output depth / KP: a flattened 1x1 tile's columns
    assert cfg.max_output_dim == max(4096, cfg.output_buffer_depth // cfg.kp) == 5461
    assert AccelConfig(output_buffer_depth=8192).max_output_dim == 4096
    assert AccelConfig(kp=1, yp=1, output_buffer_depth=1 << 22).max_output_dim == 65535
    assert cfg.max_channel_images == 65535
    # words of 9 row words of 16 bytes (yp 4), rounded down
    assert cfg.streaming_buffer_words == 65536 // (9 * 16) == 455
    assert AccelConfig(yp=1, streaming_buffer_depth=256).streaming_buffer_words == 256 // 36
    assert AccelConfig(yp=64, streaming_buffer_depth=4096).streaming_buffer_words == 1
    assert AccelConfig(kp=1, stationary_buffer_depth=1 << 20).max_channel_images == 1 << 20


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_blocks_take_limits_from_the_config():
    from hw.control.controller import Controller
    from hw.datapath.core import ComputeCore
    from hw.dma import AxiDma
    from hw.control.sequencer import Sequencer
    from hw.top import Accelerator

    cfg = AccelConfig(max_outstanding_writes=5, read_buffer_depth=1024, read_route_depth=16,
                      write_queue_depth=128, sequencer_queue_depth=8, line_buffer_slots=16,
                      csr_addr_width=14)
    dma = AxiDma.from_config(cfg)
    assert (dma.reader.max_outstanding, dma.writer.max_outstanding) == (8, 5)
    assert dma.reader.fifo_depth == 1024
    core = ComputeCore(cfg)
    assert core.line_buffer.slots == 16
    assert core.output.max_dim == cfg.max_output_dim
    assert core.line_buffer.max_channels == cfg.max_channel_images
    assert Sequencer(core).queue_depth == 8
    assert Controller(cfg).cfg.write_queue_depth == 128
    assert Accelerator(cfg).signature.members["s_axil"].signature.addr_width == 14


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
@pytest.mark.parametrize("make", [
    lambda: __import__("hw.datapath.dpe_array", fromlist=["DPEArray"]).DPEArray(kp=0, yp=4),
    lambda: __import__("hw.datapath.stationary_buffer", fromlist=["StationaryBuffer"]).StationaryBuffer(kp=65, depth=4),
    lambda: __import__("hw.datapath.output_buffer", fromlist=["OutputBuffer"]).OutputBuffer(kp=3, yp=0, depth=4),
    lambda: __import__("hw.datapath.line_buffer", fromlist=["LineBuffer"]).LineBuffer(yp=65, max_row=100),
    lambda: __import__("hw.dma.axi", fromlist=["AXI4Signature"]).AXI4Signature(addr_width=40.0, data_width=128),
])
def test_blocks_share_the_range_check(make):
    """Blocks that take a configuration field check it with the configuration's own helper:
    a ValueError naming the parameter, the value and the allowed range."""
    with pytest.raises(ValueError, match=r"must be (an integer )?in \[\d+, \d+\], got "):
        make()
