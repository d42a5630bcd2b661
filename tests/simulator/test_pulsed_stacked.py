"""The aggregate update of all tiles of an array at once equals the tiles' own updates."""

from __future__ import annotations

import pytest
import torch

from simulator.configs import get_preset
from simulator.configs.devices import ConstantStepDevice, DeviceConfig, LinearStepDevice
from simulator.configs.update import UpdateConfig
from simulator.mapping import TileArray
from simulator.pulsed import PulsedUpdater
from simulator.pulsed.aggregate import aggregate_moments
from simulator.pulsed.management import probabilities
from simulator.pulsed.numerics import sqrt_
from simulator.pulsed.stacked import StackedUpdater
from simulator.rng import RandomSource
from tests.simulator.pulsed_statistics import one_thread

pytestmark = pytest.mark.usefixtures(one_thread.__name__)

DEVICES = [ConstantStepDevice(), ConstantStepDevice(up_down=0.2),
           LinearStepDevice(gamma_up=0.5, gamma_down=0.3)]


def _data(seed: int, t: int, n: int = 6, n_in: int = 9, n_out: int = 5, signed: bool = False):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(t, n, n_in, generator=gen)
    x = 2 * x - 1 if signed else x * (torch.rand(t, n, n_in, generator=gen) < 0.6)
    return x, 0.05 * torch.randn(t, n, n_out, generator=gen)


def _updaters(cfg: DeviceConfig, t: int, rng_mode: str = "pool") -> list[PulsedUpdater]:
    upd_cfg = UpdateConfig(rng=rng_mode)
    return [PulsedUpdater(cfg, upd_cfg, 5, 9, RandomSource(10 + k, mode=rng_mode)) for k in range(t)]


@pytest.mark.parametrize("rng_mode", ["pool", "torch"])
@pytest.mark.parametrize("cfg", DEVICES, ids=lambda c: f"{type(c).__name__}-{c.up_down}")
def test_one_tile_is_bit_identical_to_its_updater(cfg: DeviceConfig, rng_mode: str) -> None:
    # same state, same draws, same operations: the stacked path of a single tile is the updater
    alone, stacked_src = _updaters(cfg, 1, rng_mode)[0], _updaters(cfg, 1, rng_mode)
    stacked = StackedUpdater(stacked_src)
    w_alone = alone.clip_(torch.zeros(5, 9))
    w_stacked = stacked_src[0].clip_(torch.zeros(5, 9)).unsqueeze(0)
    for step in range(4):
        x, d = _data(step, 1, signed=step == 2)
        alone.update_(w_alone, x[0], d[0], lr=0.1)
        stacked.update_(w_stacked, x, d, lr=0.1)
        assert torch.equal(w_alone, w_stacked[0])


@pytest.mark.parametrize("cfg", DEVICES, ids=lambda c: f"{type(c).__name__}-{c.up_down}")
def test_several_tiles_compute_each_tiles_update(cfg: DeviceConfig) -> None:
    # Tile t is updated from its own inputs, errors, state and the t-th slice of the one draw:
    # the reference runs the updater's steps tile by tile with that slice. Products of 3 tiles in
    # one batched call and of one tile alone may round differently (float32 sums of 6 terms):
    # a few ulps of the moments, hence the tolerance.
    updaters = _updaters(cfg, 3)
    stacked = StackedUpdater(updaters)
    w = torch.stack([u.clip_(torch.zeros(5, 9)) for u in updaters])
    x, d = _data(1, 3, signed=True)
    expected = w.clone()
    src = RandomSource(10)  # the first tile's source, as the stack draws from it
    xi, z_d, z_x = src.normal((3, 5, 9)), src.normal(d.shape), src.normal(x.shape)
    for t, upd in enumerate(updaters):
        probs = probabilities(x[t], d[t], 0.1, upd.granularity, upd.update_cfg)
        moments = aggregate_moments(probs, (z_d[t], z_x[t]), signed_q=upd._signed_q)
        upd.model.respond_moments_(expected[t], upd.state, moments, xi[t])
    stacked.update_(w, x, d, lr=0.1)
    assert not torch.equal(w, torch.stack([u.clip_(torch.zeros(5, 9)) for u in updaters]))
    torch.testing.assert_close(w, expected, rtol=1e-5, atol=1e-7)


def test_state_is_shared_and_relinked_after_loading() -> None:
    updaters = _updaters(ConstantStepDevice(), 2)
    stacked = StackedUpdater(updaters)
    state = stacked.state
    assert state["w_max"].shape == (2, 5, 9)
    assert updaters[1].state["w_max"].data_ptr() == state["w_max"][1].data_ptr()  # a view
    other = PulsedUpdater(ConstantStepDevice(), UpdateConfig(), 5, 9, RandomSource(99))
    updaters[1].load_state_dict(other.state_dict())
    assert torch.equal(stacked.state["w_max"][1], other.w_max)  # restacked from the new state
    assert torch.equal(stacked.state["w_max"][0], updaters[0].w_max)


def test_what_cannot_be_stacked() -> None:
    assert not StackedUpdater.supports([])
    exact = PulsedUpdater(ConstantStepDevice(), UpdateConfig(mode="exact"), 5, 9, RandomSource(0))
    noisy = PulsedUpdater(LinearStepDevice(write_noise_std=1.0), UpdateConfig(), 5, 9, RandomSource(0))
    plain = PulsedUpdater(ConstantStepDevice(), UpdateConfig(), 5, 9, RandomSource(0))
    shorter = PulsedUpdater(ConstantStepDevice(), UpdateConfig(), 4, 9, RandomSource(0))
    for group in ([exact], [noisy], [plain, shorter]):
        assert not StackedUpdater.supports(group)
        with pytest.raises(ValueError, match="equal shape"):
            StackedUpdater(group)


def test_learning_rate_zero_and_negative() -> None:
    a, b = StackedUpdater(_updaters(ConstantStepDevice(), 2)), StackedUpdater(_updaters(ConstantStepDevice(), 2))
    wa, wb = torch.zeros(2, 5, 9), torch.zeros(2, 5, 9)
    x, d = _data(3, 2)
    a.update_(wa, x, d, lr=0.0)
    assert torch.equal(wa, torch.zeros(2, 5, 9))
    a.update_(wa, x, d, lr=-0.1)  # gradient ascent: descent on -d
    b.update_(wb, x, -d, lr=0.1)
    assert torch.equal(wa, wb)


@pytest.mark.parametrize("grid", [(64, 16, 32, 0), (64, 16, 0, 8), (64, 16, 32, 8), (40, 6, 0, 0)],
                         ids=["input-split", "output-split", "both", "one-tile"])
def test_array_update_gives_every_tile_its_slice(grid: tuple[int, int, int, int]) -> None:
    # The array hands each tile the inputs of its rows and the errors of its columns and writes
    # the result back into the tile's block; the reference updates every tile's block alone
    # with the slice of the stack's draw (tolerance as above).
    n_in, n_out, max_in, max_out = grid
    cfg = get_preset("gokmen_vlasov").with_overrides({
        "mapping.max_input_size": max_in, "mapping.max_output_size": max_out})
    array = TileArray(n_in, n_out, cfg, seed=4)
    assert array._stacked_updater() is not None
    gen = torch.Generator().manual_seed(5)
    array.set_weights(torch.randn(n_out, n_in, generator=gen) * 0.1)
    blocks = [tile.weight.detach().clone() for tile in array.tiles]
    before = [b.clone() for b in blocks]
    x, d = torch.rand(8, n_in, generator=gen), torch.randn(8, n_out, generator=gen) * 0.05
    src = RandomSource(array.tiles[0].seed)
    xi = src.normal((array.n_tiles, array.tile_out, array.tile_in))
    z_d = src.normal((array.n_tiles, x.shape[0], array.tile_out))
    z_x = src.normal((array.n_tiles, x.shape[0], array.tile_in))
    for t, (tile, block) in enumerate(zip(array.tiles, blocks)):
        upd = tile.updater
        x_t = x[:, tile.in_offset: tile.in_offset + tile.in_size]
        d_t = d[:, tile.out_offset: tile.out_offset + tile.out_size]
        probs = probabilities(x_t, d_t, 0.05, upd.granularity, upd.update_cfg)
        moments = aggregate_moments(probs, (z_d[t], z_x[t]), upd._signed_q)
        upd.model.respond_moments_(block, upd.state, moments, xi[t])
    array._stash(x, d)
    array.apply_pending(lr=0.05)
    for tile, block in zip(array.tiles, blocks):
        torch.testing.assert_close(tile.weight.detach(), block, rtol=1e-5, atol=1e-7)
    assert all(not torch.equal(tile.weight.detach(), b) for tile, b in zip(array.tiles, before))


def test_arrays_fall_back_to_tile_updates_where_stacking_does_not_apply() -> None:
    noisy = get_preset("gokmen_vlasov").with_overrides({
        "device.type": "LinearStepDevice", "device.write_noise_std": 1.0, "mapping.max_input_size": 32})
    padded = get_preset("gokmen_vlasov").with_overrides({"mapping.max_input_size": 32})
    exact = get_preset("gokmen_vlasov").with_overrides({"update.mode": "exact", "mapping.max_input_size": 32})
    assert TileArray(64, 8, noisy)._stacked_updater() is None
    assert TileArray(63, 8, padded)._stacked_updater() is None  # 32 + 31 inputs: padded tiles
    assert TileArray(64, 8, exact)._stacked_updater() is None
    assert TileArray(64, 8, padded)._stacked_updater() is not None


def test_sqrt_keeps_zeros_and_matches_torch() -> None:
    gen = torch.Generator().manual_seed(0)
    for dtype in (torch.float32, torch.float64):
        v = torch.rand(10_000, generator=gen, dtype=dtype) * (torch.rand(10_000, generator=gen) < 0.3)
        v[:3] = torch.tensor([0.0, 1e-30, 1e-20], dtype=dtype)
        got, want = sqrt_(v.clone()), v.sqrt()
        assert bool((got[v == 0] == 0).all())
        # v / sqrt(v) rounds twice more than sqrt: within 4 ulps
        torch.testing.assert_close(got, want, rtol=4 * torch.finfo(dtype).eps, atol=0.0)
