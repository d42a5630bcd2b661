"""Named RPU configurations: the starting points of studies (aihwkit's presets).

Every preset is a plain :class:`~simulator.configs.rpu.RPUConfig`; :func:`get_preset` returns a
fresh copy that a study may modify with ``with_overrides``.

=================  ==============================================================================
name               what it models
=================  ==============================================================================
``ideal``          floating point end to end (an analog layer equals its torch layer)
``idealized``      aihwkit ``IdealizedPreset``: symmetric constant-step device with 10,000 states
``gokmen_vlasov``  aihwkit ``GokmenVlasovPreset`` (Gokmen & Vlasov 2016 RPU specification)
``semi_ideal``     ``gokmen_vlasov`` without cycle-to-cycle variation (paper 002)
``reram_es``       aihwkit ``ReRamESPreset``: exp-step fit to Gong et al., Nat. Commun. 2018
``ecram``          aihwkit ``EcRamPreset``: linear-step fit to Li-ECRAM, Tang et al., IEDM 2018
``capacitor``      aihwkit ``CapacitorPreset``: linear-step fit to Li et al., VLSI 2018
``pcm_inference``  aihwkit ``InferenceRPUConfig`` defaults: noisy forward, float update, PCM
                   programming noise, drift and read noise, global drift compensation
``hwa_standard``   hardware-aware training after aihwkit ``StandardHWATrainingPreset`` (8-bit
                   DAC/ADC, PCM read noise, column-wise weight scaling) plus training weight noise
``reram_sb``       aihwkit ``ReRamSBPreset``: soft-bounds ReRAM read against a reference device
=================  ==============================================================================

Training algorithms for asymmetric devices (aihwkit's compound presets, ``presets/configs.py``):
``<algorithm>_<device>`` with algorithm ``tiki_taka`` (``TikiTaka*Preset``: Tiki-Taka v1,
:class:`~simulator.configs.compounds.TransferCompound`), ``ttv2`` (``TTv2*Preset``: a chopped
compound without choppers), ``c_ttv2`` (``ChoppedTTv2*Preset``) or ``agad`` (``AGAD*Preset``:
:class:`~simulator.configs.compounds.DynamicTransferCompound`) and device ``reram_es``,
``reram_sb`` (its reference at each device's symmetry point) or ``ecram``; both devices of a
cross-point are the preset device, the transfer read uses ``preset_io`` without noise and bound
management, and the buffered kinds write one pulse per threshold crossing.

Each preset prices its cost with the technology file of its device family (``cost.tech``):
``pcm22`` for the PCM presets, ``ecram22`` and ``capacitor22`` for those devices, ``rram22``
(22 nm 1T1R ReRAM) for the others.

The pulsed presets use aihwkit's ``PresetIOParameters`` for both directions (7-bit DAC, 9-bit ADC,
output noise 0.1, output bound 20, abs-max noise management, iterative bound management in the
forward pass) and ``PresetUpdateParameters`` (BL 31, update and BL management) with the
``aggregate`` update (set ``update.mode = "exact"`` for per-sample pulse trains).
"""

from __future__ import annotations

from collections.abc import Callable

from simulator.configs.compounds import (
    ChoppedTransferCompound,
    DynamicTransferCompound,
    TransferCompound,
)
from simulator.configs.cost import CostConfig
from simulator.configs.devices import (
    ConstantStepDevice,
    DeviceConfig,
    ExpStepDevice,
    IdealDevice,
    LinearStepDevice,
    PulsedDeviceConfig,
    SoftBoundsReferenceDevice,
)
from simulator.configs.io import IOConfig, perfect_io
from simulator.configs.mapping import MappingConfig
from simulator.configs.noise import DriftConfig, NoiseConfig, PCMLikeProgNoise, ReadNoiseConfig
from simulator.configs.rpu import ModifierConfig, RPUConfig
from simulator.configs.update import UpdateConfig
from simulator.errors import ConfigError

__all__ = ["PRESETS", "get_preset", "preset_io", "preset_names"]


def preset_io(*, forward: bool = True) -> IOConfig:
    """aihwkit's ``PresetIOParameters`` (bound management only in the forward direction)."""
    return IOConfig(inp_bits=7, out_bits=9, out_bound=20.0, out_noise=0.1,
                    noise_management="abs_max",
                    bound_management="iterative" if forward else "none")


def _pulsed(device: DeviceConfig, tech: str = "rram22", desired_bl: int = 31) -> RPUConfig:
    return RPUConfig(
        forward=preset_io(forward=True),
        backward=preset_io(forward=False),
        update=UpdateConfig(desired_bl=desired_bl, update_management=True, update_bl_management=True),
        device=device,
        cost=CostConfig(tech=tech),
    )


def _ideal() -> RPUConfig:
    return RPUConfig(forward=perfect_io(), backward=perfect_io(),
                     update=UpdateConfig(mode="none"), device=IdealDevice())


def _idealized() -> RPUConfig:
    return _pulsed(ConstantStepDevice(
        dw_min=0.0002, dw_min_dtod=0.3, dw_min_std=0.3, up_down=0.0, up_down_dtod=0.0,
        w_max=1.0, w_min=-1.0, w_max_dtod=0.3, w_min_dtod=0.3))


def _gokmen_vlasov_device(dw_min_std: float = 0.3) -> ConstantStepDevice:
    return ConstantStepDevice(
        dw_min=0.0016, dw_min_dtod=0.3, dw_min_std=dw_min_std, up_down=0.0, up_down_dtod=0.01,
        w_max=1.0, w_min=-1.0, w_max_dtod=0.3, w_min_dtod=0.3)


def _gokmen_vlasov() -> RPUConfig:
    return _pulsed(_gokmen_vlasov_device())


def _semi_ideal() -> RPUConfig:
    return _pulsed(_gokmen_vlasov_device(dw_min_std=0.0))


def _reram_es_device() -> ExpStepDevice:
    return ExpStepDevice(
        dw_min=0.00135, up_down=0.259359, w_max=1.0, w_min=-1.0, a=-0.5, b=-0.5,
        gamma_up=5.0, gamma_down=5.0, A_up=-1.18445, A_down=-0.081404,
        dw_min_dtod=0.2, up_down_dtod=0.05, w_max_dtod=0.3, w_min_dtod=0.3,
        dw_min_std=5.0, write_noise_std=75.0)


def _reram_sb_device(subtract_symmetry_point: bool = False) -> SoftBoundsReferenceDevice:
    return SoftBoundsReferenceDevice(
        dw_min=0.002, up_down=0.0, w_max=1.25, w_min=-0.75, mult_noise=False,
        dw_min_dtod=0.3, up_down_dtod=0.01, w_max_dtod=0.24, w_min_dtod=0.4,
        dw_min_std=3.75, write_noise_std=56.0, subtract_symmetry_point=subtract_symmetry_point)


def _ecram_device() -> LinearStepDevice:
    return LinearStepDevice(
        dw_min=0.002, up_down=0.0, w_max=1.1724, w_min=-0.8276, mult_noise=True,
        gamma_up=0.1153, gamma_down=0.5085, dw_min_dtod=0.1, up_down_dtod=0.01,
        w_max_dtod=0.05, w_min_dtod=0.05, gamma_up_dtod=0.05, gamma_down_dtod=0.05,
        dw_min_std=0.3, write_noise_std=0.0, mean_bound_reference=True)


def _reram_es() -> RPUConfig:
    return _pulsed(_reram_es_device())


def _reram_sb() -> RPUConfig:
    return _pulsed(_reram_sb_device())


def _ecram() -> RPUConfig:
    return _pulsed(_ecram_device(), tech="ecram22")


def _capacitor() -> RPUConfig:
    # aihwkit's fit also has a leakage (lifetime 1e6 mini-batches, under 1% over 5 MNIST
    # epochs); capacitor leakage is not modelled here.
    return _pulsed(LinearStepDevice(
        dw_min=0.005, up_down=0.0, w_max=1.0, w_min=-1.0, mult_noise=False,
        gamma_up=0.05, gamma_down=0.05, dw_min_dtod=0.1, up_down_dtod=0.06,
        w_max_dtod=0.07, w_min_dtod=0.07, gamma_up_dtod=0.01, gamma_down_dtod=0.01,
        dw_min_std=0.3, write_noise_std=0.0, mean_bound_reference=True), tech="capacitor22")


def _pcm_noise() -> NoiseConfig:
    return NoiseConfig(programming=PCMLikeProgNoise(), drift=DriftConfig(model="pcm"),
                       read_noise=ReadNoiseConfig(model="pcm"), compensation="global",
                       g_max=25.0, t0=20.0)


def _pcm_inference() -> RPUConfig:
    return RPUConfig(forward=IOConfig(), backward=perfect_io(), update=UpdateConfig(mode="none"),
                     device=IdealDevice(), noise=_pcm_noise(), cost=CostConfig(tech="pcm22"))


def _hwa_standard() -> RPUConfig:
    # Forward of aihwkit's StandardHWATrainingPreset; its learned input ranges are replaced by
    # abs-max noise management and its IR drop is not modelled. The weight noise during training
    # (additive, 10% of each tile's max |W|) is the value of aihwkit's hardware-aware examples.
    forward = IOConfig(inp_bits=8, out_bits=8, out_bound=10.0, out_noise=0.04, w_noise=0.0175,
                       w_noise_type="pcm_read", noise_management="abs_max",
                       bound_management="none")
    return RPUConfig(
        forward=forward, backward=perfect_io(), update=UpdateConfig(mode="none"),
        device=IdealDevice(), noise=_pcm_noise(),
        mapping=MappingConfig(max_input_size=512, max_output_size=512, digital_bias=True,
                              weight_scaling_omega=1.0, weight_scaling_columnwise=True),
        modifier=ModifierConfig(noise_type="add_normal", std_dev=0.1, rel_to_actual_wmax=True),
        cost=CostConfig(tech="pcm22"),
    )


# -- the Tiki-Taka family (aihwkit presets/configs.py) ------------------------------------------
_DEVICES: dict[str, tuple[Callable[[], PulsedDeviceConfig], str]] = {
    "reram_es": (_reram_es_device, "rram22"),
    "reram_sb": (lambda: _reram_sb_device(subtract_symmetry_point=True), "rram22"),
    "ecram": (_ecram_device, "ecram22"),
}
"""Device family -> (preset device of both A and C, cost technology)."""


def _transfer_read() -> IOConfig:
    """aihwkit's ``PresetIOParameters(noise_management=NONE, bound_management=NONE)``."""
    return preset_io(forward=True).with_overrides({"noise_management": "none", "bound_management": "none"})


def _one_pulse_write() -> UpdateConfig:
    """``PresetUpdateParameters(desired_bl=1, update_bl_management=False, update_management=False)``."""
    return UpdateConfig(desired_bl=1, update_management=False, update_bl_management=False)


def _tiki_taka(family: str) -> RPUConfig:
    make, tech = _DEVICES[family]
    device = TransferCompound(fast=make(), slow=make(), transfer_every=1.0, units_in_mbatch=True,
                              transfer_forward=_transfer_read(),
                              transfer_update=UpdateConfig(desired_bl=31))
    return _pulsed(device, tech)


# family -> (fast_lr, auto_granularity, desired_bl) of TTv2 / c-TTv2; AGAD adds tail and chopper
_TTV2 = {"reram_es": (0.5, 1000.0, 31), "reram_sb": (0.5, 1000.0, 31), "ecram": (0.1, 500.0, 100)}
_C_TTV2 = {"reram_es": (0.5, 1000.0, 31), "reram_sb": (0.5, 1000.0, 31), "ecram": (1.0, 500.0, 100)}
_AGAD = {"reram_es": (0.5, 1000.0, 31, 5.0, 0.02), "reram_sb": (0.5, 1000.0, 31, 5.0, 0.02),
         "ecram": (0.1, 750.0, 31, 50.0, 0.005)}


def _chopped(family: str, in_chop_prob: float) -> RPUConfig:
    make, tech = _DEVICES[family]
    fast_lr, auto_granularity, bl = (_TTV2 if in_chop_prob == 0.0 else _C_TTV2)[family]
    device = ChoppedTransferCompound(
        fast=make(), slow=make(), in_chop_prob=in_chop_prob, fast_lr=fast_lr, auto_scale=True,
        auto_granularity=auto_granularity, units_in_mbatch=False,
        transfer_forward=_transfer_read(), transfer_update=_one_pulse_write())
    return _pulsed(device, tech, desired_bl=bl)


def _agad(family: str) -> RPUConfig:
    make, tech = _DEVICES[family]
    fast_lr, auto_granularity, bl, tail, chop = _AGAD[family]
    device = DynamicTransferCompound(
        fast=make(), slow=make(), fast_lr=fast_lr, auto_granularity=auto_granularity,
        tail_weightening=tail, in_chop_prob=chop, auto_scale=True, units_in_mbatch=False,
        transfer_forward=_transfer_read(), transfer_update=_one_pulse_write())
    return _pulsed(device, tech, desired_bl=bl)


def _family_presets() -> dict[str, Callable[[], RPUConfig]]:
    out: dict[str, Callable[[], RPUConfig]] = {}
    for family in _DEVICES:
        out[f"tiki_taka_{family}"] = lambda f=family: _tiki_taka(f)
        out[f"ttv2_{family}"] = lambda f=family: _chopped(f, 0.0)
        out[f"c_ttv2_{family}"] = lambda f=family: _chopped(f, 0.01)
        out[f"agad_{family}"] = lambda f=family: _agad(f)
    return out


PRESETS: dict[str, Callable[[], RPUConfig]] = {
    "ideal": _ideal,
    "idealized": _idealized,
    "gokmen_vlasov": _gokmen_vlasov,
    "semi_ideal": _semi_ideal,
    "reram_es": _reram_es,
    "ecram": _ecram,
    "capacitor": _capacitor,
    "pcm_inference": _pcm_inference,
    "hwa_standard": _hwa_standard,
    "reram_sb": _reram_sb,
    **_family_presets(),
}
"""Preset name -> factory of a fresh :class:`RPUConfig`."""


def preset_names() -> list[str]:
    """The preset names, in documentation order."""
    return list(PRESETS)


def get_preset(name: str) -> RPUConfig:
    """A fresh copy of the preset ``name``; unknown names raise :class:`ConfigError`."""
    factory = PRESETS.get(name) if isinstance(name, str) else None
    if factory is None:
        raise ConfigError("preset", f"got {name!r}; accepted: {', '.join(PRESETS)}")
    return factory()
