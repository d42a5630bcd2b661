"""Mapping a layer onto tiles: split sizes, weight layout, tiled MVMs equal one tile when ideal."""

from __future__ import annotations

import pytest
import torch

from simulator.configs import IOConfig, MappingConfig, RPUConfig, get_preset
from simulator.mapping import TileArray, split_sizes


def test_split_sizes_follow_aihwkit_equal_parts() -> None:
    assert split_sizes(784, 512) == [392, 392]
    assert split_sizes(785, 512) == [393, 392]
    assert split_sizes(512, 512) == [512]
    assert split_sizes(1100, 512) == [367, 367, 366]
    assert split_sizes(300, 0) == [300]
    for n in range(1, 1200, 37):
        for m in (1, 7, 128, 512):
            sizes = split_sizes(n, m)
            assert sum(sizes) == n and max(sizes) <= m and max(sizes) - min(sizes) <= 1
            assert len(sizes) == -(-n // m)


# Noise-free, unquantized, unbounded periphery that still runs the tiled (non-ideal) code path.
CLEAN = IOConfig(inp_bits=None, out_bits=None, out_bound=None, out_noise=0.0, w_noise=0.0,
                 noise_management="abs_max", bound_management="none")


def _float_cfg(max_in: int, max_out: int, *, digital_bias: bool = True) -> RPUConfig:
    return get_preset("ideal").with_overrides({
        "forward": CLEAN, "backward": CLEAN,
        "mapping.max_input_size": max_in, "mapping.max_output_size": max_out,
        "mapping.digital_bias": digital_bias,
    })


@pytest.mark.parametrize("perfect_backward", [False, True])
@pytest.mark.parametrize(("max_in", "max_out"), [(512, 512), (16, 512), (512, 8), (13, 6)])
def test_tiled_forward_and_gradients_equal_one_tile(max_in: int, max_out: int,
                                                    perfect_backward: bool) -> None:
    gen = torch.Generator().manual_seed(0)
    n_in, n_out, n = 40, 21, 9
    w = torch.randn(n_out, n_in, generator=gen, dtype=torch.float64)
    x = torch.randn(n, n_in, generator=gen, dtype=torch.float64)
    g = torch.randn(n, n_out, generator=gen, dtype=torch.float64)
    outs = []
    for cfg in (_float_cfg(0, 0), _float_cfg(max_in, max_out)):
        if perfect_backward:
            cfg = cfg.with_overrides({"backward.is_perfect": True})
        array = TileArray(n_in, n_out, cfg, dtype=torch.float64)
        array.set_weights(w)
        xi = x.clone().requires_grad_(True)
        y = array(xi)
        y.backward(g)
        outs.append((y.detach(), xi.grad, array))
    (y1, gx1, one), (y2, gx2, tiled) = outs
    assert one.n_tiles == 1 and tiled.n_tiles == len(split_sizes(n_in, max_in)) * len(split_sizes(n_out, max_out))
    torch.testing.assert_close(y2, y1, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(y1, x @ w.t(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gx2, gx1, rtol=1e-12, atol=1e-12)
    # The weight gradient of every tile is its block of g^T x.
    full = g.t() @ x
    grads = tiled.stacked(tiled.weight.grad)
    for t, tile in enumerate(tiled.tiles):
        block = grads[t, : tile.out_size, : tile.in_size]
        want = full[tile.out_offset: tile.out_offset + tile.out_size,
                    tile.in_offset: tile.in_offset + tile.in_size]
        torch.testing.assert_close(block, want, rtol=1e-12, atol=1e-12)


def test_weights_round_trip_and_tile_views() -> None:
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(11, 30, generator=gen)
    array = TileArray(30, 11, _float_cfg(8, 4))
    array.set_weights(w)
    got, bias = array.get_weights()
    assert bias is None and torch.equal(got, w)
    for tile in array.tiles:
        want = w[tile.out_offset: tile.out_offset + tile.out_size, tile.in_offset: tile.in_offset + tile.in_size]
        assert torch.equal(tile.weight, want)
    mask = array.valid_mask()
    assert mask is not None and int(mask.sum()) == w.numel()
    assert float(array.stacked().detach()[~mask].abs().sum()) == 0.0, "padding stays zero"


def test_analog_bias_with_range_matching_scale() -> None:
    gen = torch.Generator().manual_seed(2)
    w = torch.randn(6, 10, generator=gen, dtype=torch.float64) * 0.1
    b = torch.randn(6, generator=gen, dtype=torch.float64) * 2.0
    x = torch.randn(5, 10, generator=gen, dtype=torch.float64)
    cfg = _float_cfg(4, 512, digital_bias=False).with_overrides({"mapping.bias_scale": None})
    array = TileArray(10, 6, cfg, analog_bias=True, dtype=torch.float64)
    array.set_weights(w, b)
    # paper 001: s matches the bias column's range to the weights' range
    s = float(array.bias_input)
    assert s == pytest.approx(float(b.abs().max() / w.abs().max()))
    column = array.logical_weight().detach()[:, 10]
    assert float(column.abs().max()) == pytest.approx(float(w.abs().max()))
    got_w, got_b = array.get_weights()
    torch.testing.assert_close(got_w, w)
    torch.testing.assert_close(got_b, b)
    torch.testing.assert_close(array(x), x @ w.t() + b, rtol=1e-12, atol=1e-12)
    assert array.in_sizes == split_sizes(11, 4), "the bias column is an input of the last tile"


def test_fixed_bias_scale_and_ideal_analog_bias() -> None:
    cfg = get_preset("ideal").with_overrides({"mapping.digital_bias": False, "mapping.bias_scale": 2.0})
    array = TileArray(3, 2, cfg, analog_bias=True, dtype=torch.float64)
    w = torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.5, 0.0]], dtype=torch.float64)
    b = torch.tensor([0.4, -0.2], dtype=torch.float64)
    array.set_weights(w, b)
    assert float(array.bias_input) == 2.0
    torch.testing.assert_close(array.logical_weight().detach()[:, 3], b / 2.0)
    x = torch.tensor([[1.0, 1.0, 1.0]], dtype=torch.float64)
    assert array.ideal_active
    torch.testing.assert_close(array(x), x @ w.t() + b)


def test_set_weights_rejects_a_wrong_shape() -> None:
    array = TileArray(4, 3, get_preset("ideal"))
    with pytest.raises(Exception, match=r"weight shape \(4, 3\) does not match the array's \(3, 4\)"):
        array.set_weights(torch.zeros(4, 3))


def test_mapping_config_defaults_are_aihwkit_tile_size() -> None:
    m = MappingConfig()
    assert (m.max_input_size, m.max_output_size, m.digital_bias) == (512, 512, True)
    array = TileArray(784, 256, get_preset("gokmen_vlasov"))
    assert array.n_tiles == 2 and array.in_sizes == [392, 392]


# -- what the MVM reads: weight scaling and training-time weight noise --------------------------
def _residuals(array: TileArray, x: torch.Tensor, w: torch.Tensor, reps: int) -> torch.Tensor:
    """``y - W x`` of ``reps`` passes of the single input ``x (1, in)``: ``(reps, out)``.

    Training noise is drawn once per pass (per mini-batch), so only separate passes give
    independent draws.
    """
    return torch.cat([array(x).detach() - x @ w.t() for _ in range(reps)])


# Per-output stds below come from 2,000 independent Gaussian draws: relative standard error
# 1 / sqrt(2 * 2,000) = 1.6%; the 8% tolerance is 5 standard errors.
REPS = 2000
PER_OUTPUT_RTOL = 5 / (2 * REPS) ** 0.5


def _scaled_weights() -> torch.Tensor:
    gen = torch.Generator().manual_seed(6)
    return torch.randn(6, 30, generator=gen, dtype=torch.float64) * torch.tensor(
        [0.05, 0.1, 0.2, 0.4, 0.8, 1.6], dtype=torch.float64).unsqueeze(1)


def test_columnwise_weight_scaling_refers_output_noise_to_each_outputs_range() -> None:
    # Each output's weights are scaled to max |w| = omega on the tile and rescaled digitally, so
    # output noise of std sigma on the tile is sigma * max|W_j| / omega at output j.
    w = _scaled_weights()
    io = IOConfig(inp_bits=None, out_bits=None, out_bound=None, out_noise=0.05,
                  noise_management="none", bound_management="none")
    cfg = get_preset("ideal").with_overrides({"forward": io, "mapping.weight_scaling_omega": 0.5,
                                              "mapping.weight_scaling_columnwise": True})
    array = TileArray(30, 6, cfg, dtype=torch.float64)
    array.set_weights(w)
    x = torch.ones(REPS, 30, dtype=torch.float64)  # output noise is independent per sample
    r = array(x).detach() - x @ w.t()
    want = 0.05 * w.abs().amax(1) / 0.5
    torch.testing.assert_close(r.std(0), want, rtol=PER_OUTPUT_RTOL, atol=0.0)


@pytest.mark.parametrize("columnwise", [False, True])
def test_additive_training_noise_is_relative_to_the_tile_range(columnwise: bool) -> None:
    w = _scaled_weights()
    clean = IOConfig(inp_bits=None, out_bits=None, out_bound=None, out_noise=0.0,
                     noise_management="none", bound_management="none")
    cfg = get_preset("ideal").with_overrides({
        "forward": clean, "modifier.noise_type": "add_normal", "modifier.std_dev": 0.1,
        "mapping.weight_scaling_omega": 1.0 if columnwise else None,
        "mapping.weight_scaling_columnwise": columnwise})
    array = TileArray(30, 6, cfg, dtype=torch.float64)
    array.set_weights(w)
    x = torch.rand(1, 30, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    std = _residuals(array, x, w, REPS).std(0) / x.norm()
    # noise 0.1 * max|w| of the (scaled) tile: per tile, or per output after column-wise scaling
    ref = w.abs().amax(1) if columnwise else w.abs().max().expand(6)
    torch.testing.assert_close(std, 0.1 * ref, rtol=PER_OUTPUT_RTOL, atol=0.0)
    array.eval()
    torch.testing.assert_close(array(x), x @ w.t(), rtol=1e-12, atol=1e-12)


def test_multiplicative_training_noise_scales_with_each_weight() -> None:
    w = _scaled_weights()
    clean = IOConfig(inp_bits=None, out_bits=None, out_bound=None, out_noise=0.0,
                     noise_management="none", bound_management="none")
    cfg = get_preset("ideal").with_overrides({"forward": clean, "modifier.noise_type": "mult_normal",
                                              "modifier.std_dev": 0.2})
    array = TileArray(30, 6, cfg, dtype=torch.float64)
    array.set_weights(w)
    x = torch.ones(1, 30, dtype=torch.float64)
    r = _residuals(array, x, w, REPS)
    torch.testing.assert_close(r.std(0), 0.2 * w.norm(dim=1), rtol=PER_OUTPUT_RTOL, atol=0.0)


@pytest.mark.parametrize("analog_bias", [False, True])
def test_perfect_bias_makes_only_the_analog_bias_column_ideal(analog_bias: bool) -> None:
    """A layer split over two tile rows: with an analog bias, only the devices of the bias
    column (the last input of the last tile row) are ideal; with a digital bias, none is."""
    cfg = get_preset("gokmen_vlasov").with_overrides({"device.perfect_bias": True, "mapping.max_input_size": 6})
    array = TileArray(9, 3, cfg, analog_bias=analog_bias)
    assert array.n_row == 2
    ideal_w_max = 100.0 * cfg.device.w_max
    for tile in array.tiles:
        w_max = tile.updater.state["w_max"]
        is_bias_tile = analog_bias and tile.in_offset + tile.in_size == array.in_total
        assert bool((w_max[:, -1] == ideal_w_max).all()) == is_bias_tile, (tile.row, tile.col)
        assert not bool((w_max[:, :-1] == ideal_w_max).any())
