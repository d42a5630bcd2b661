"""The analog MVM periphery: quantizers, noise/bound management against a naive reference, noise."""

from __future__ import annotations

import math

import pytest
import torch

from simulator.configs import IOConfig
from simulator.io import AnalogIO, quantize
from simulator.rng import RandomSource


def _naive_quantize(v: float, step: float, bound: float) -> float:
    return max(-bound, min(bound, step * round(v / step)))  # Python's round: half to even


def test_quantize_matches_a_naive_reference() -> None:
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(2000, generator=gen, dtype=torch.float64) - 0.5) * 3.0
    for bits, bound in ((3, 1.0), (7, 1.0), (9, 20.0)):
        step = 2 * bound / (2**bits - 2)
        got = quantize(x * bound, step, bound)
        want = torch.tensor([_naive_quantize(float(v) * bound, step, bound) for v in x], dtype=torch.float64)
        assert torch.equal(got, want)
        levels = torch.unique(quantize(torch.linspace(-2 * bound, 2 * bound, 20001, dtype=torch.float64),
                                       step, bound))
        assert len(levels) == 2**bits - 1  # 2**bits - 1 levels, symmetric around zero


def test_stochastic_rounding_is_unbiased() -> None:
    step, frac, n = 0.1, 0.3, 200_000
    x = torch.full((n,), (4 + frac) * step, dtype=torch.float64)
    q = quantize(x, step, 10.0, stochastic=True, rng=RandomSource(1, mode="torch"))
    levels = torch.round(q / step)
    assert set(levels.unique().tolist()) == {4.0, 5.0}
    up = float((levels == 5).double().mean())
    # Binomial fraction: std sqrt(f (1 - f) / n) = 0.00102; allow 5 standard deviations.
    assert abs(up - frac) < 5 * math.sqrt(frac * (1 - frac) / n)


def _naive_mvm(x: torch.Tensor, w: torch.Tensor, io: IOConfig) -> torch.Tensor:
    """aihwkit's per-vector forward (C++ ``forwardVector``) for noise-free settings, in float64."""
    xs = x.tolist()
    if io.noise_management == "abs_max":
        alpha = max(abs(v) for v in xs)
    elif io.noise_management == "max":
        alpha = max(xs)
    else:
        alpha = 1.0
    if io.noise_management != "none" and io.nm_thres > 0:
        alpha = min(alpha, io.nm_thres)
    if alpha <= 0:
        alpha = 1.0
    bound = math.inf if io.out_bound is None else io.out_bound
    reduction, passed = 0.5, False
    while not passed:
        reduction *= 2
        scaled = [v / (alpha * reduction) for v in xs]
        if io.inp_step is not None:
            scaled = [_naive_quantize(v, io.inp_step, io.inp_bound) for v in scaled]
        scaled = [max(-io.inp_bound, min(io.inp_bound, v)) for v in scaled]
        y = [sum(wij * v for wij, v in zip(row, scaled)) for row in w.tolist()]
        if io.out_step is not None:
            y = [step_round for step_round in (io.out_step * round(v / io.out_step) for v in y)]
        clipped = any(abs(v) > bound for v in y)
        y = [max(-bound, min(bound, v)) for v in y]
        if io.bound_management == "none":
            passed = True
        else:
            passed = (not clipped or reduction > io.max_bm_factor
                      or (io.inp_step is not None and reduction > io.max_bm_res / io.inp_step))
    return torch.tensor([v * alpha * reduction for v in y], dtype=torch.float64)


NOISE_FREE = {"out_noise": 0.0, "w_noise": 0.0}


@pytest.mark.parametrize("io", [
    IOConfig(**NOISE_FREE),
    IOConfig(inp_bits=5, out_bits=6, out_bound=3.0, **NOISE_FREE),
    IOConfig(noise_management="max", out_bound=2.0, **NOISE_FREE),
    IOConfig(noise_management="none", inp_bound=2.0, out_bound=4.0, bound_management="none", **NOISE_FREE),
    IOConfig(nm_thres=0.5, out_bits=None, out_bound=1.5, **NOISE_FREE),
    IOConfig(inp_bits=None, out_bits=None, out_bound=None, **NOISE_FREE),
], ids=["aihwkit-default", "low-res", "max-nm", "no-nm", "nm-thres", "unquantized"])
def test_mvm_matches_the_naive_per_vector_reference(io: IOConfig) -> None:
    gen = torch.Generator().manual_seed(3)
    tiles, n, n_in, n_out = 3, 24, 40, 7
    x = torch.randn(tiles, n, n_in, generator=gen, dtype=torch.float64)
    x[0, 0] = 0.0  # an all-zero vector keeps scale 1
    x[1, 1] = -x[1, 1].abs()  # an all-negative vector ("max" management: scale 1)
    w = torch.randn(tiles, n_out, n_in, generator=gen, dtype=torch.float64) * 0.3
    got = AnalogIO(io).mvm(x, w, RandomSource(0, mode="torch"))
    want = torch.stack([torch.stack([_naive_mvm(x[t, b], w[t], io) for b in range(n)]) for t in range(tiles)])
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_bound_management_rescues_clipped_vectors() -> None:
    gen = torch.Generator().manual_seed(5)
    x = torch.rand(1, 64, 100, generator=gen, dtype=torch.float64)
    w = torch.full((1, 4, 100), 0.5, dtype=torch.float64)  # outputs ~ 0.5 * sum(x / max x) >> 12
    exact = torch.bmm(x, w.transpose(1, 2))
    base = dict(inp_bits=None, out_bits=None, out_bound=12.0, **NOISE_FREE)
    clipped = AnalogIO(IOConfig(bound_management="none", **base)).mvm(x, w, RandomSource(0))
    managed = AnalogIO(IOConfig(bound_management="iterative", **base)).mvm(x, w, RandomSource(0))
    assert (clipped - exact).abs().max() > 1.0
    torch.testing.assert_close(managed, exact, rtol=1e-12, atol=1e-12)


def test_perfect_io_is_the_plain_product_and_transposed_is_the_backward() -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 5, 6, generator=gen)
    w = torch.randn(2, 3, 6, generator=gen)
    perfect = AnalogIO(IOConfig(is_perfect=True))
    assert torch.equal(perfect.mvm(x, w, RandomSource(0)), torch.bmm(x, w.transpose(1, 2)))
    d = torch.randn(2, 5, 3, generator=gen, dtype=torch.float64)
    io = AnalogIO(IOConfig(out_bound=4.0, bound_management="none", **NOISE_FREE))
    w64 = w.double()
    torch.testing.assert_close(io.mvm(d, w64, RandomSource(0), transposed=True),
                               io.mvm(d, w64.transpose(1, 2).contiguous(), RandomSource(0)))


def _residuals(io: IOConfig, x: torch.Tensor, w: torch.Tensor, seed: int = 0) -> torch.Tensor:
    y = AnalogIO(io).mvm(x, w, RandomSource(seed, mode="torch"))
    return y - torch.bmm(x, w.transpose(1, 2))


UNQUANTIZED = {"inp_bits": None, "out_bits": None, "out_bound": None, "noise_management": "none",
                   "bound_management": "none"}


def _data(n: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(11)
    x = torch.rand(4, n, 64, generator=gen, dtype=torch.float64) * 2 - 1
    w = torch.randn(4, 50, 64, generator=gen, dtype=torch.float64) * 0.2
    return x, w


# Each check below estimates a std from n = 4 * 500 * 50 = 100,000 Gaussian residuals; the relative
# standard error of a sample std is 1 / sqrt(2 n) = 0.0022, so a 2% tolerance is 9 standard errors.
STD_RTOL = 0.02


def test_output_noise_has_the_configured_std() -> None:
    x, w = _data()
    r = _residuals(IOConfig(out_noise=0.1, **UNQUANTIZED), x, w)
    assert float(r.std()) == pytest.approx(0.1, rel=STD_RTOL)
    assert abs(float(r.mean())) < 5 * 0.1 / math.sqrt(r.numel())


def test_additive_weight_noise_scales_with_the_input_norm() -> None:
    x, w = _data()
    r = _residuals(IOConfig(out_noise=0.0, w_noise=0.05, w_noise_type="additive_constant", **UNQUANTIZED), x, w)
    normalized = r / x.norm(dim=-1, keepdim=True)
    assert float(normalized.std()) == pytest.approx(0.05, rel=STD_RTOL)


@pytest.mark.parametrize("snr_db", [12.0, 24.0])
def test_snr_gives_output_noise_of_std_ten_to_minus_snr_over_twenty(snr_db: float) -> None:
    x, w = _data()
    r = _residuals(IOConfig(out_noise=0.5, snr_db=snr_db, **UNQUANTIZED), x, w)
    assert float(r.std()) == pytest.approx(10 ** (-snr_db / 20), rel=STD_RTOL)


def test_pcm_read_noise_scales_with_sqrt_of_weighted_input_power() -> None:
    x, w = _data()
    r = _residuals(IOConfig(out_noise=0.0, w_noise=0.03, w_noise_type="pcm_read", **UNQUANTIZED), x, w)
    power = torch.bmm(x * x, w.abs().transpose(1, 2))
    assert float((r / power.sqrt()).std()) == pytest.approx(0.03, rel=STD_RTOL)


def test_noise_is_reproducible_for_a_seed() -> None:
    x, w = _data(50)
    io = IOConfig(out_noise=0.1, w_noise=0.02, w_noise_type="additive_constant", inp_sto_round=True)
    for mode in ("torch", "pool"):
        a = AnalogIO(io).mvm(x, w, RandomSource(7, mode=mode))
        b = AnalogIO(io).mvm(x, w, RandomSource(7, mode=mode))
        c = AnalogIO(io).mvm(x, w, RandomSource(8, mode=mode))
        assert torch.equal(a, b) and not torch.equal(a, c)
