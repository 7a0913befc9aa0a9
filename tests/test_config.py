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
])
def test_cross_field_limits(kwargs, name):
    with pytest.raises(ValueError, match=name):
        AccelConfig(**kwargs)


def test_from_dict_rejects_unknown_fields():
    with pytest.raises(ValueError, match="unknown AccelConfig fields"):
        AccelConfig.from_dict({"kp": 3, "kq": 4})
