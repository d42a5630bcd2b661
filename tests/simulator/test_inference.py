"""Inference non-idealities: programming noise, drift, read noise, compensation, perturbations."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from simulator import AnalogSGD, convert_to_analog, inference
from simulator.configs import (
    AdditiveProgNoise,
    IOConfig,
    RelativeProgNoise,
    get_preset,
)
from simulator.errors import ConfigError, SimulatorError

N_IN, N_OUT = 200, 160  # 32,000 weights per layer: the sample size of the statistics below
N = N_IN * N_OUT
CLEAN = IOConfig(inp_bits=None, out_bits=None, out_bound=None, out_noise=0.0, w_noise=0.0,
                 noise_management="none", bound_management="none")


def _model(overrides: dict, weights: torch.Tensor | None = None, *, seed: int = 0) -> nn.Module:
    cfg = get_preset("ideal").with_overrides({"forward": CLEAN, **overrides})
    net = nn.Sequential(nn.Linear(N_IN, N_OUT, bias=False))
    if weights is None:
        weights = torch.empty(N_OUT, N_IN).uniform_(0.1, 1.0, generator=torch.Generator().manual_seed(7))
        weights *= torch.where(torch.rand(N_OUT, N_IN, generator=torch.Generator().manual_seed(8)) < 0.5, -1, 1)
    with torch.no_grad():
        net[0].weight.copy_(weights)
    return convert_to_analog(net, cfg, seed=seed)


def _weights(model: nn.Module) -> torch.Tensor:
    return model[0].get_weights()[0]


def _z(sample_mean: float, mean: float, std: float, n: int) -> float:
    """Standard score of a sample mean of n draws of std ``std``."""
    return abs(sample_mean - mean) / (std / math.sqrt(n))


# Sample std of n Gaussian draws: relative standard error 1 / sqrt(2 n) = 0.004 for n = 32,000;
# 5 standard errors give the 2% tolerance used below. Means are checked at 5 standard errors.
STD_RTOL = 5 / math.sqrt(2 * N)


@pytest.mark.parametrize(("alpha", "shift"), [(0.1, 0.0), (0.5, 0.0), (0.2, -0.05)])
def test_relative_programming_noise_is_paper_004_g_of_w(alpha: float, shift: float) -> None:
    model = _model({"noise.programming": RelativeProgNoise(alpha=alpha, mean_shift=shift)})
    w = _weights(model)
    inference.program(model, seed=1)
    ratio = (_weights(model) / w - 1.0).flatten()
    assert _z(float(ratio.mean()), shift, alpha, N) < 5
    assert float(ratio.std()) == pytest.approx(alpha, rel=STD_RTOL)


def test_additive_programming_noise_scales_with_the_weight_range_and_shifts() -> None:
    model = _model({"noise.programming": AdditiveProgNoise(std=0.05, mean_shift=0.02)})
    w = _weights(model)
    inference.program(model, seed=2)
    rel = ((_weights(model) - w) / w.abs().max()).flatten()
    assert _z(float(rel.mean()), 0.02, 0.05, N) < 5
    assert float(rel.std()) == pytest.approx(0.05, rel=STD_RTOL)


def test_program_is_repeatable_per_seed_and_reset_restores_the_trained_weights() -> None:
    model = _model({"noise.programming": RelativeProgNoise(alpha=0.3)})
    trained = _weights(model)
    inference.program(model, seed=4)
    first = _weights(model)
    inference.program(model, seed=5)
    assert not torch.equal(first, _weights(model)), "each seed is a new realisation"
    inference.program(model, seed=4)
    assert torch.equal(first, _weights(model)), "re-programming starts from the trained weights"
    inference.reset(model)
    assert torch.equal(_weights(model), trained)
    assert model[0].array.programmed is None


def test_power_law_drift_and_global_compensation_are_exact_without_noise() -> None:
    # nu_std = 0: every device drifts as ((t + t0) / t0) ** -nu; global compensation rescales the
    # outputs by readout(0) / readout(t), which for a uniform nu is exactly the inverse factor.
    model = _model({"noise.drift.model": "gaussian", "noise.drift.nu_mean": 0.06,
                    "noise.drift.nu_std": 0.0, "noise.compensation": "global"})
    x = torch.rand(16, N_IN)
    inference.program(model, seed=0)
    programmed, y0 = _weights(model), model(x).detach()
    for t in (1.0, 3600.0, 86400.0, 3.15e7):
        factor = ((t + 20.0) / 20.0) ** -0.06
        inference.drift(model, t, compensation=False)
        torch.testing.assert_close(_weights(model), programmed * factor, rtol=1e-5, atol=1e-7)
        inference.drift(model, t)
        torch.testing.assert_close(model(x).detach(), y0, rtol=1e-4, atol=1e-5)


def test_gaussian_drift_exponents_have_the_configured_statistics() -> None:
    model = _model({"noise.drift.model": "gaussian", "noise.drift.nu_mean": 0.05,
                    "noise.drift.nu_std": 0.01})
    inference.program(model, seed=6)
    programmed = _weights(model)
    t = 86400.0
    inference.drift(model, t, compensation=False)
    nu = -torch.log(_weights(model) / programmed) / math.log((t + 20.0) / 20.0)
    # |N(0.05, 0.01)| is N(0.05, 0.01) up to a 5-sigma tail: mean and std as configured.
    assert _z(float(nu.mean()), 0.05, 0.01, N) < 5
    assert float(nu.std()) == pytest.approx(0.01, rel=STD_RTOL)


def test_pcm_drift_exponents_depend_on_the_conductance() -> None:
    # At g = g_max aihwkit's fit gives mu = max(0.0244, 0.049) = 0.049 and sigma = 0.008.
    model = _model({"noise.drift.model": "pcm"}, torch.full((N_OUT, N_IN), 0.7))
    inference.program(model, seed=7)
    nu = model[0].array.drift_nu[0].flatten()
    assert _z(float(nu.mean()), 0.049, 0.008, N) < 5
    assert float(nu.std()) == pytest.approx(0.008, rel=STD_RTOL)
    # The other device of each pair (g = 0) gets the clipped maximum mean 0.1.
    assert float(model[0].array.drift_nu[1].mean()) == pytest.approx(0.1, abs=0.045 * 5 / math.sqrt(N))


def test_pcm_inference_preset_end_to_end_is_seeded() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(30, 20), nn.ReLU(), nn.Linear(20, 5))
    x = torch.rand(64, 30)
    outs = []
    for _ in range(2):
        model = convert_to_analog(net, "pcm_inference", seed=1).eval()
        inference.program(model, seed=3)
        inference.drift(model, 86400.0, seed=3)
        outs.append(model(x).detach())
        assert model[0].array.out_factor is not None
    assert torch.equal(outs[0], outs[1])
    ref = net(x).detach()
    assert float((outs[0] - ref).abs().mean()) < float(ref.abs().mean())


def test_perturbation_is_temporary_and_has_the_requested_statistics() -> None:
    model = _model({"noise.programming.type": "NoProgNoise"})
    w = _weights(model)
    eye = torch.eye(N_IN)
    clean = model(eye).detach()
    with inference.perturbed(model, std=0.05, mean=0.01):
        seen = model(eye).t().detach() - w
        loss = model(torch.rand(4, N_IN)).sum()
        loss.backward()
    rel = (seen / w.abs().max()).flatten()
    assert _z(float(rel.mean()), 0.01, 0.05, N) < 5
    assert float(rel.std()) == pytest.approx(0.05, rel=STD_RTOL)
    assert model[0].array.weight.grad is not None
    assert torch.equal(model(eye).detach(), clean), "the weights are untouched afterwards"


def test_forward_snr_override_for_a_perfect_forward() -> None:
    model = convert_to_analog(nn.Sequential(nn.Linear(N_IN, N_OUT, bias=False)), "ideal")
    x = torch.rand(100, N_IN)
    clean = model(x).detach()
    with inference.at_forward_snr(model, 20.0):
        noisy = model(x).detach()
    assert torch.equal(model(x).detach(), clean)
    # 20 dB is output noise of std 0.1 (no noise management: in output units). 16,000
    # residuals: relative standard error of the std 1 / sqrt(2 n) = 0.0056, 5 of them 2.8%
    res = (noisy - clean).flatten()
    assert float(res.std()) == pytest.approx(0.1, rel=5 / math.sqrt(2 * res.numel()))


def test_io_overrides_change_and_restore_the_periphery() -> None:
    model = convert_to_analog(nn.Sequential(nn.Linear(8, 4)), "gokmen_vlasov")
    with inference.at_forward_snr(model, 12.0):
        assert model[0].array.rpu.forward.snr_db == 12.0
        assert model[0].array.rpu.forward.out_bits == 9
    assert model[0].array.rpu.forward.snr_db is None
    with pytest.raises(ConfigError, match="only the periphery"), \
            inference.io_overrides(model, {"device.dw_min": 0.1}):
        pass


def test_program_selected_layers_and_freeze_them_for_detector_retraining() -> None:
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, 3))
    model = convert_to_analog(net, "gokmen_vlasov", seed=2)
    head_before = model[2].array.weight.detach().clone()
    trained = model[0].get_weights()[0]
    inference.program(model, layers=["0"], noise=RelativeProgNoise(alpha=0.5), seed=3)
    inference.freeze(model, ["0"])
    programmed = model[0].get_weights()[0]
    assert not torch.equal(programmed, trained)
    assert torch.equal(model[2].array.weight.detach(), head_before), "only the named layer"
    opt = AnalogSGD([p for p in model.parameters() if p.requires_grad], lr=0.2)
    for _ in range(3):
        opt.zero_grad()
        F.cross_entropy(model(torch.rand(6, 10)), torch.randint(0, 3, (6,))).backward()
        opt.step()
    assert torch.equal(model[0].get_weights()[0], programmed)
    assert not torch.equal(model[2].array.weight.detach(), head_before)


def test_inference_errors_name_what_is_wrong() -> None:
    model = _model({})
    with pytest.raises(SimulatorError, match="call program"):
        inference.drift(model, 10.0)
    with pytest.raises(ConfigError) as info:
        inference.program(model, layers=["fc9"])
    assert info.value.path == "layers[0]" and "accepted: 0" in str(info.value)
    inference.program(model)
    with pytest.raises(ConfigError, match="t_seconds: got -1.0"):
        inference.drift(model, -1.0)
    with pytest.raises(ConfigError, match="std: got -0.1"), inference.perturbed(model, std=-0.1):
        pass
