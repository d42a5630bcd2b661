"""Tiles of an array: views, updates, device bounds, seeds, write noise across tiles."""

from __future__ import annotations

import pytest
import torch

from simulator.configs import get_preset
from simulator.mapping import TileArray
from simulator.tile import derive_seed


def test_derive_seed_is_deterministic_and_spreads() -> None:
    seeds = {derive_seed(7, a, b) for a in range(20) for b in range(20)}
    assert len(seeds) == 400
    assert derive_seed(7, 1, 2) == derive_seed(7, 1, 2) != derive_seed(7, 2, 1)
    assert all(0 <= s < 2**63 for s in seeds)


def test_float_tile_update_changes_only_its_block() -> None:
    cfg = get_preset("ideal").with_overrides({"mapping.max_input_size": 5, "mapping.max_output_size": 3})
    array = TileArray(10, 6, cfg, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(6, 10, generator=gen, dtype=torch.float64)
    array.set_weights(w)
    tile = array.tiles[3]  # row 1, col 1: inputs 5:10, outputs 3:6
    assert (tile.row, tile.col, tile.in_offset, tile.out_offset) == (1, 1, 5, 3)
    x = torch.randn(4, 5, generator=gen, dtype=torch.float64)
    d = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    tile.update(x, d, 0.1)
    want = w.clone()
    want[3:6, 5:10] -= 0.1 * d.t() @ x
    torch.testing.assert_close(array.get_weights()[0], want)


def test_pulsed_tiles_stay_within_their_device_bounds() -> None:
    cfg = get_preset("gokmen_vlasov").with_overrides({"mapping.max_input_size": 32})
    array = TileArray(64, 16, cfg, seed=3)
    array.set_weights(torch.full((16, 64), 5.0))  # far outside every bound: clipped on writing
    for tile in array.tiles:
        assert torch.equal(tile.weight.detach(), tile.updater.w_max)
    gen = torch.Generator().manual_seed(1)
    for step in range(30):
        x = torch.rand(16, 64, generator=gen)
        d = torch.randn(16, 16, generator=gen) * (1.0 if step % 2 else -3.0)
        array._stash(x, d)
        array.apply_pending(lr=2.0)
    for tile in array.tiles:
        w = tile.weight.detach()
        assert bool((w <= tile.updater.w_max).all()) and bool((w >= tile.updater.w_min).all())
        assert not torch.equal(w, tile.updater.w_max), "updates moved the weights"


def test_tiles_have_their_own_device_variation() -> None:
    cfg = get_preset("gokmen_vlasov").with_overrides({"mapping.max_input_size": 32})
    array = TileArray(64, 16, cfg, seed=3)
    again = TileArray(64, 16, cfg, seed=3)
    other = TileArray(64, 16, cfg, seed=4)
    a, b = array.tiles[0].updater.w_max, array.tiles[1].updater.w_max
    assert not torch.equal(a, b)
    assert torch.equal(a, again.tiles[0].updater.w_max)
    assert not torch.equal(a, other.tiles[0].updater.w_max)


def test_write_noise_does_not_accumulate_when_tiles_share_storage() -> None:
    # Write noise of std sigma = write_noise_std * dw_min = 1000 * 1e-4 = 0.1 is redrawn around
    # the hidden weight at each update. Pulses (dw_min 1e-4, at most BL = 31 per sample, 4 samples) move a hidden weight by
    # at most 0.0124 per step, in random directions, so over 100 steps by a std of at most
    # 0.124; W_100 - W_0 then has a std of at most sqrt(2 * 0.1**2 + 0.124**2) = 0.19. If the
    # shown (noisy) weight were taken as the new hidden weight the noise would random-walk: std
    # 0.1 * sqrt(100) = 1.0 before clipping at the bounds (about 0.6 after). 0.3 separates them.
    cfg = get_preset("gokmen_vlasov").with_overrides({
        "device.type": "LinearStepDevice", "device.write_noise_std": 1000.0, "device.dw_min": 1e-4,
        "mapping.max_input_size": 32})
    array = TileArray(64, 8, cfg, seed=5)
    assert array.n_tiles == 2
    array.set_weights(torch.zeros(8, 64))
    w0 = array.stacked().detach().clone()
    gen = torch.Generator().manual_seed(2)
    for step in range(100):
        x = torch.rand(4, 64, generator=gen)
        d = torch.randn(4, 8, generator=gen) * (1 if step % 2 else -1)
        array._stash(x, d)
        array.apply_pending(lr=0.01)
    spread = float((array.stacked().detach() - w0).std())
    shown = array.weight.detach()
    assert 0.05 < spread < 0.3
    for tile in array.tiles:
        start = tile.row * array.tile_in
        hidden = tile.updater.state_dict()["hidden"]
        noise = shown[:, start: start + tile.in_size] - hidden
        # 256 devices per tile: the noise is one fresh draw of std 0.1 (relative standard error of
        # a std 1 / sqrt(2 * 256) = 4.4%, 4 of them 18%), not a sum of 100 draws
        assert float(noise.std()) == pytest.approx(0.1, rel=0.18)
        assert float((hidden - hidden.mean()).abs().max()) < 0.6  # pulses alone, no random walk
