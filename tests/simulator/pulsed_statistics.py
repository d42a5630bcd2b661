"""Statistics helpers for the pulsed-update tests (repeated updates, per-device moment checks).

The checks compare per-device sample moments with a tolerance of ``Z`` standard errors, where
the standard error comes from the samples themselves: for the mean ``sqrt(s**2 / R)``, for the
sample variance ``sqrt((m4 - s**4 (R - 3) / (R - 1)) / R)`` (``m4`` the fourth central moment),
so non-Gaussian (discrete, skewed) weight changes are covered. With ``Z = 5`` a single device
fails by chance with probability 6e-7; the tests check at most a few hundred devices.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import torch

Z = 5.0


@pytest.fixture()
def one_thread() -> Iterator[None]:
    """Run on one intra-op thread: thousands of tiny updates are dominated by thread hand-offs."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def repeated_changes(update: Callable[[torch.Tensor], None], w0: torch.Tensor, runs: int) -> torch.Tensor:
    """``(runs, *w0.shape)``: the weight change of ``runs`` independent updates of ``w0``."""
    out = torch.empty((runs, *w0.shape), dtype=w0.dtype)
    for r in range(runs):
        w = w0.clone()
        update(w)
        out[r] = w - w0
    return out


def mean_and_stderr(samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-element sample mean and its standard error."""
    r = samples.shape[0]
    return samples.mean(0), samples.var(0) / r


def var_and_stderr(samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-element sample variance and the variance of that estimate."""
    r = samples.shape[0]
    centred = samples - samples.mean(0)
    s2 = centred.pow(2).sum(0) / (r - 1)
    m4 = centred.pow(4).mean(0)
    return s2, ((m4 - s2 * s2 * (r - 3) / (r - 1)) / r).clamp(min=0.0)


def assert_means_match(a: torch.Tensor, b: torch.Tensor, atol: float = 1e-12) -> None:
    """Per-element means of two sample sets agree within ``Z`` standard errors."""
    ma, va = mean_and_stderr(a)
    mb, vb = mean_and_stderr(b)
    bound = Z * (va + vb).sqrt() + atol
    bad = (ma - mb).abs() > bound
    assert not bool(bad.any()), f"{int(bad.sum())} means differ; worst {((ma - mb).abs() / bound).max():.2f}x"


def assert_mean_is(a: torch.Tensor, expected: torch.Tensor, atol: float = 1e-12) -> None:
    """Per-element sample mean agrees with ``expected`` within ``Z`` standard errors."""
    ma, va = mean_and_stderr(a)
    bound = Z * va.sqrt() + atol
    bad = (ma - expected).abs() > bound
    assert not bool(bad.any()), f"{int(bad.sum())} means off; worst {((ma - expected).abs() / bound).max():.2f}x"


def assert_variances_match(a: torch.Tensor, b: torch.Tensor, atol: float = 1e-14) -> None:
    """Per-element variances of two sample sets agree within ``Z`` standard errors."""
    sa, ea = var_and_stderr(a)
    sb, eb = var_and_stderr(b)
    bound = Z * (ea + eb).sqrt() + atol
    bad = (sa - sb).abs() > bound
    assert not bool(bad.any()), f"{int(bad.sum())} variances differ; worst {((sa - sb).abs() / bound).max():.2f}x"
