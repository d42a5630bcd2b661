"""The config machinery every simulator config is built on."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

import pytest

from simulator._config import Config, check_order, check_range, field_docs
from simulator.errors import ConfigError


@dataclass
class _Device(Config):
    dw_min: float = 0.001
    """Mean step."""

    def validate(self) -> None:
        check_range("dw_min", self.dw_min, 0.0, None, lo_open=True)


@dataclass
class _Constant(_Device):
    up_down: float = 0.0
    """Asymmetry."""


@dataclass
class _Exp(_Device):
    a: float = 0.244
    """Shape parameter a."""


_Device.register_kinds(_Constant, _Exp)


@dataclass
class _IO(Config):
    inp_bits: int | None = 7
    """DAC bits (None: no quantization)."""
    noise_management: Literal["none", "abs_max"] = "abs_max"
    """Input scaling."""
    w_min: float = -1.0
    """Lower bound."""
    w_max: float = 1.0
    """Upper bound."""
    sizes: tuple[int, ...] = (1, 2)
    """A list."""

    def validate(self) -> None:
        check_range("inp_bits", self.inp_bits, 1, 24, allow_none=True)
        check_order("w_min", self.w_min, "w_max", self.w_max)


@dataclass
class _RPU(Config):
    forward: _IO = field(default_factory=_IO)
    """Forward IO."""
    device: _Device = field(default_factory=_Constant)
    """The device."""


def test_round_trip_through_json() -> None:
    cfg = _RPU(forward=_IO(inp_bits=None, sizes=(3,)), device=_Exp(a=0.5))
    data = json.loads(json.dumps(cfg.to_dict()))
    assert data["device"] == {"type": "_Exp", "dw_min": 0.001, "a": 0.5}
    assert data["forward"]["sizes"] == [3]
    assert _RPU.from_dict(data) == cfg


def test_overrides_by_dotted_path_and_kind_switch() -> None:
    cfg = _RPU()
    assert cfg.with_overrides({"forward.inp_bits": 4}).forward.inp_bits == 4
    switched = cfg.with_overrides({"device.a": 0.3, "device.type": "_Exp"})
    assert switched.device == _Exp(a=0.3)
    assert cfg.with_overrides({"device": "_Exp", "device.dw_min": 0.01}).device == _Exp(dw_min=0.01)
    assert cfg.get_path("device.dw_min") == 0.001
    # setting the kind it already has resets it to that kind's defaults, then applies the rest
    changed = cfg.with_overrides({"device.up_down": 0.5})
    assert changed.with_overrides({"device.type": "_Constant", "device.dw_min": 0.01}).device == _Constant(dw_min=0.01)
    assert cfg == _RPU(), "overrides return a copy"


@pytest.mark.parametrize(
    ("overrides", "path", "fragment"),
    [
        ({"device.dw_min": -1}, "device.dw_min", "a number > 0"),
        ({"device.a": 1.0}, "device.a", "accepted: dw_min, up_down"),
        ({"forward.noise_management": "max"}, "forward.noise_management", "'none', 'abs_max'"),
        ({"forward.inp_bits": "7"}, "forward.inp_bits", "an integer"),
        ({"forward.inp_bits": 99}, "forward.inp_bits", "[1, 24]"),
        ({"forward.w_min": 2.0}, "forward.w_min", "w_min <= w_max"),
        ({"forward.sizes": [1, "x"]}, "forward.sizes[1]", "an integer"),
        ({"nope": 1}, "nope", "accepted: forward, device"),
        ({"device.type": "Bogus"}, "device.type", "_Constant, _Exp"),
        ({"forward.inp_bits.deeper": 1}, "forward.inp_bits", "not a config"),
    ],
)
def test_bad_overrides_name_path_value_and_accepted(overrides: dict, path: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        _RPU().with_overrides(overrides)
    assert info.value.path == path
    assert fragment in str(info.value)


def test_from_dict_rejects_unknown_keys_and_missing_kind() -> None:
    with pytest.raises(ConfigError, match=r"^forward\.bogus: unknown field"):
        _RPU.from_dict({"forward": {"bogus": 1}})
    with pytest.raises(ConfigError, match=r"^device\.dw_min: got 0\.0"):
        _RPU.from_dict({"device": {"type": "_Exp", "dw_min": 0}})


def test_direct_construction_is_validated() -> None:
    with pytest.raises(ConfigError, match="inp_bits"):
        _IO(inp_bits=0)
    with pytest.raises(ConfigError, match="an integer"):
        _IO(inp_bits=True)  # type: ignore[arg-type]
    assert _IO(w_min=-1).w_min == -1.0 and isinstance(_IO(w_min=-1).w_min, float)


def test_field_docs_are_read_from_source() -> None:
    assert field_docs(_Exp) == {"dw_min": "Mean step.", "a": "Shape parameter a."}
