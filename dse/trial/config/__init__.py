"""The trial config schema (torch-free): what one trial trains, on which hardware, and how.

A trial config is plain data with eight sections::

    dataset:    {name: digits, validation_fraction: 0.1, ...}
    model:      {name: fcnn, hidden: [256, 128], activation: relu, keep_digital: []}
    hardware:   {preset: gokmen_vlasov, device: {dw_min: 0.002}, forward.out_bits: 7}
    training:   {epochs: 10, batch_size: 32, lr: 0.05, schedule: {type: step, step_size: 10}}
    algorithm:  {type: analog_sgd}            # or hwa, ha_sgd, detector_retrain
    evaluation: {repeats: 5, drift_times_s: [1, 3600, 86400, 31536000], snr_db: []}
    inference:  {forward.out_bits: 6, noise.programming.scale: 2.0}   # evaluation hardware
    seed:       0

:func:`validate_trial_config` returns a normalized copy (every default filled in, the hardware
overrides nested) or raises :class:`~dse.errors.SpecError` naming the dotted path of the offending
key. The hardware section is a simulator preset plus overrides of any ``RPUConfig`` field, given
nested (``device: {dw_min: 0.002}``) or by dotted key (``device.dw_min: 0.002``); both address the
same path ``hardware.device.dw_min``, which is also what a study parameter targets. Hardware
paths and values are checked against :mod:`simulator.configs` (torch-free).

:func:`set_path` / :func:`get_path` put / read a value at a dotted path (``model.hidden[1]``,
``hardware.forward.out_bits``) on a plain config dict, the way a study maps its parameters.
"""

from __future__ import annotations

from dse.trial.config.algorithms import (
    AlgorithmConfig,
    AnalogSGDAlgorithm,
    DetectorRetrainAlgorithm,
    HASGDAlgorithm,
    HWAAlgorithm,
)
from dse.trial.config.hardware import (
    DEFAULT_PRESET,
    hardware_overrides,
    normalize_hardware,
    resolve_hardware,
)
from dse.trial.config.inference import INFERENCE_FIELDS, inference_overrides, resolve_inference
from dse.trial.config.paths import get_path, set_path
from dse.trial.config.sections import DatasetConfig, EvaluationConfig, ModelConfig
from dse.trial.config.stages import (
    evaluation_part,
    pretraining_config,
    section_stages,
    stage_of,
    training_key,
    training_part,
)
from dse.trial.config.training import (
    ConstantSchedule,
    OneCycleSchedule,
    ScheduleConfig,
    StepSchedule,
    TrainingConfig,
)
from dse.trial.config.trial import SECTIONS, TrialConfig, parse_trial_config, validate_trial_config

__all__ = [
    "DEFAULT_PRESET",
    "INFERENCE_FIELDS",
    "SECTIONS",
    "AlgorithmConfig",
    "AnalogSGDAlgorithm",
    "ConstantSchedule",
    "DatasetConfig",
    "DetectorRetrainAlgorithm",
    "EvaluationConfig",
    "HASGDAlgorithm",
    "HWAAlgorithm",
    "ModelConfig",
    "OneCycleSchedule",
    "ScheduleConfig",
    "StepSchedule",
    "TrainingConfig",
    "TrialConfig",
    "evaluation_part",
    "get_path",
    "hardware_overrides",
    "inference_overrides",
    "normalize_hardware",
    "parse_trial_config",
    "pretraining_config",
    "resolve_hardware",
    "resolve_inference",
    "section_stages",
    "set_path",
    "stage_of",
    "training_key",
    "training_part",
    "validate_trial_config",
]
