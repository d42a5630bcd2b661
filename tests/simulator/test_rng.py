"""``RandomSource``: determinism and the statistics of both modes."""

from __future__ import annotations

import math

import pytest
import torch

from simulator.errors import ConfigError
from simulator.rng import POOL_SIZE, RandomSource

N = 200_000


@pytest.mark.parametrize("mode", ["pool", "torch"])
def test_seed_gives_identical_streams(mode: str) -> None:
    a, b, c = RandomSource(5, mode=mode), RandomSource(5, mode=mode), RandomSource(6, mode=mode)
    for shape in [(3, 4), (100,), (7, 1, 2)]:
        x, y, z = a.normal(shape), b.normal(shape), c.normal(shape)
        assert x.shape == shape and torch.equal(x, y) and not torch.equal(x, z)
        assert torch.equal(a.uniform(shape), b.uniform(shape))


@pytest.mark.parametrize("mode", ["pool", "torch"])
def test_moments_of_one_draw(mode: str) -> None:
    rng = RandomSource(1, mode=mode)
    z = rng.normal((N,), dtype=torch.float64)
    u = rng.uniform((N,), dtype=torch.float64)
    # standard errors: mean 1/sqrt(N), variance sqrt(2/N) (normal), uniform mean sqrt(1/12/N),
    # uniform variance sqrt((1/80 - 1/144)/N); 6 standard errors each
    assert abs(float(z.mean())) < 6 / math.sqrt(N)
    assert abs(float(z.var()) - 1) < 6 * math.sqrt(2 / N)
    assert float(u.min()) >= 0 and float(u.max()) < 1
    assert abs(float(u.mean()) - 0.5) < 6 * math.sqrt(1 / 12 / N)
    assert abs(float(u.var()) - 1 / 12) < 6 * math.sqrt((1 / 80 - 1 / 144) / N)


def test_successive_pool_windows_are_uncorrelated() -> None:
    rng = RandomSource(2, mode="pool")
    draws = torch.stack([rng.normal((1000,), dtype=torch.float64) for _ in range(200)])
    # correlation of the same element across consecutive calls (what a device sees step to step),
    # 199 * 1000 pairs: standard error 1/sqrt(n), 6 standard errors
    a, b = draws[:-1].flatten(), draws[1:].flatten()
    r = float(torch.corrcoef(torch.stack([a, b]))[0, 1])
    assert abs(r) < 6 / math.sqrt(a.numel())
    # and within a call, neighbouring values
    flat = draws.flatten()
    r_lag = float(torch.corrcoef(torch.stack([flat[:-1], flat[1:]]))[0, 1])
    assert abs(r_lag) < 6 / math.sqrt(flat.numel())


def test_fresh_draws_come_from_the_seeded_generator() -> None:
    pooled, plain = RandomSource(3, mode="pool"), RandomSource(3, mode="torch")
    assert torch.equal(pooled.normal((50,), fresh=True), plain.normal((50,)))
    assert torch.equal(pooled.uniform((50,), fresh=True), plain.uniform((50,)))


def test_requests_larger_than_half_the_pool_are_drawn_fresh() -> None:
    rng = RandomSource(4, mode="pool")
    big = rng.normal((POOL_SIZE // 2 + 1,))
    assert big.numel() == POOL_SIZE // 2 + 1 and big.is_contiguous()


def test_state_round_trip() -> None:
    rng = RandomSource(8)
    rng.normal((10,))
    saved = rng.state()
    first = (rng.normal((10,)), rng.uniform((5,), fresh=True))
    rng.load_state(saved)
    assert torch.equal(first[0], rng.normal((10,))) and torch.equal(first[1], rng.uniform((5,), fresh=True))


def test_invalid_mode() -> None:
    with pytest.raises(ConfigError, match=r"^rng: got 'numpy'"):
        RandomSource(0, mode="numpy")  # type: ignore[arg-type]
