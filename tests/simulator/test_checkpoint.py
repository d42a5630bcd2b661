"""Model files: round trip of weights, device state and RPU config; corrupt files refused."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from simulator import (
    AnalogSGD,
    convert_to_analog,
    get_preset,
    inference,
    load_analog_model,
    save_analog_model,
)
from simulator.checkpoint import decode_analog_model, encode_analog_model
from simulator.errors import CheckpointError, ConfigError

BUILDER = "tests.simulator.test_checkpoint:build"


def build(widths: list[int]) -> nn.Module:
    """The digital skeleton the test files name as their builder."""
    layers: list[nn.Module] = []
    for i in range(len(widths) - 1):
        layers += [nn.Linear(widths[i], widths[i + 1]), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def _trained(preset: str) -> tuple[nn.Module, object]:
    torch.manual_seed(0)
    rpu = get_preset(preset)
    model = convert_to_analog(build([12, 8, 3]), rpu, seed=5)
    opt = AnalogSGD(model.parameters(), lr=0.1)
    x, y = torch.rand(16, 12), torch.randint(0, 3, (16,))
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model, rpu


@pytest.mark.parametrize("preset", ["gokmen_vlasov", "ideal"])
def test_round_trip_keeps_weights_device_state_and_config(tmp_path, preset: str) -> None:
    model, rpu = _trained(preset)
    path = tmp_path / "m.model"
    save_analog_model(path, model, builder=BUILDER, builder_args={"widths": [12, 8, 3]}, rpu_config=rpu,
                      seed=5, metadata={"note": "hello", "accuracy": 0.5})
    loaded = load_analog_model(path)
    assert loaded.metadata == {"note": "hello", "accuracy": 0.5}
    assert loaded.rpu_config == rpu and not loaded.model.training
    before, after = model.state_dict(), loaded.model.state_dict()
    assert before.keys() == after.keys()
    for k in before:
        assert torch.equal(before[k], after[k]), k  # weights and per-device state (pulsed bounds ...)
    if preset == "ideal":  # a floating-point chip reads the same numbers
        x = torch.rand(4, 12)
        model.eval()
        assert torch.equal(model(x), loaded.model(x))


def test_damaged_files_raise_before_anything_is_unpickled(tmp_path) -> None:
    model, rpu = _trained("ideal")
    data = encode_analog_model(model, builder=BUILDER, builder_args={"widths": [12, 8, 3]}, rpu_config=rpu, seed=5)
    for bad, match in ((data[:-1], "truncated"), (data[:-5] + b"xxxxx", "corrupt"), (b"PK\x03\x04...", "not a model")):
        with pytest.raises(CheckpointError, match=match):
            decode_analog_model(bad)
    wrong = encode_analog_model(model, builder=BUILDER, builder_args={"widths": [12, 9, 3]}, rpu_config=rpu, seed=5)
    with pytest.raises(CheckpointError, match="does not fit"):
        decode_analog_model(wrong)
    with pytest.raises(CheckpointError, match="cannot be imported"):
        encode_analog_model(model, builder="no.such.module:build", builder_args={}, rpu_config=rpu)


def test_reconfigure_changes_the_chip_not_the_weights() -> None:
    model, _ = _trained("gokmen_vlasov")
    w = [layer.get_weights()[0].clone() for layer in model if hasattr(layer, "array")]
    inference.reconfigure(model, {"forward.out_bits": 4, "noise.drift.scale": 0.5, "cost.tech": "pcm22"})
    for layer, w0 in zip([m for m in model if hasattr(m, "array")], w):
        cfg = layer.array.rpu
        assert cfg.forward.out_bits == 4 and cfg.noise.drift.scale == 0.5 and cfg.cost.tech == "pcm22"
        assert layer.array.fwd.cfg.out_bits == 4  # the periphery that reads the weights
        assert torch.equal(layer.get_weights()[0], w0)
    with pytest.raises(ConfigError, match="device.dw_min"):
        inference.reconfigure(model, {"device.dw_min": 0.1})


def test_reseed_repeats_the_periphery_noise() -> None:
    model, _ = _trained("gokmen_vlasov")
    model.eval()
    x = torch.rand(8, 12)
    inference.reseed(model, 3)
    first = model(x)
    second = model(x)
    inference.reseed(model, 3)
    assert not torch.equal(first, second) and torch.equal(first, model(x))
