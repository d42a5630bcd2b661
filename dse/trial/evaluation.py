"""Post-training measurements: analog accuracy over noise realizations, drift, the SNR sweep."""

from __future__ import annotations

import statistics

from torch import nn

from dse.trial import analog
from dse.trial.config import EvaluationConfig
from dse.trial.training import Batches, evaluate

_UNITS = ((31_536_000, "y"), (86_400, "d"), (3_600, "h"), (60, "min"), (1, "s"))


def time_label(seconds: float) -> str:
    """Compact label of a duration for metric names: 1 -> ``1s``, 3600 -> ``1h``, 86400 -> ``1d``,
    31536000 -> ``1y``, 0.5 -> ``0p5s``."""
    for size, unit in _UNITS:
        if seconds >= size and float(seconds) % size == 0:
            return f"{int(seconds // size)}{unit}"
    return _number(seconds) + "s"


def snr_label(snr_db: float) -> str:
    """Label of an SNR for metric names: 18 -> ``18db``, 7.5 -> ``7p5db``, -3 -> ``m3db``."""
    return _number(snr_db) + "db"


def _number(value: float) -> str:
    text = f"{value:g}" if not float(value).is_integer() else str(int(value))
    return text.replace("-", "m").replace(".", "p")


def drift_metric(seconds: float, compensated: bool) -> str:
    """Name of the accuracy metric after drift to ``seconds`` (e.g. ``accuracy_drift_1h_compensated``)."""
    return f"accuracy_drift_{time_label(seconds)}" + ("_compensated" if compensated else "")


def snr_metric(snr_db: float) -> str:
    """Name of the accuracy metric at a forward SNR (e.g. ``accuracy_snr_18db``)."""
    return f"accuracy_snr_{snr_label(snr_db)}"


def analog_metrics(model: nn.Module, test: Batches, cfg: EvaluationConfig, seed: int) -> dict[str, float]:
    """Accuracy of the trained network as a chip would deliver it.

    For each of ``cfg.repeats`` realizations ``r`` (seeded by ``seed`` and ``r``) the trained
    weights are programmed onto the devices (programming noise of the hardware config), read at
    ``t0`` (``analog_accuracy_*``), then drifted to every time in ``cfg.drift_times_s`` and read
    with and without drift compensation; the model is reset to its trained weights afterwards.
    Drift accuracies are means over the realizations. Then the network is evaluated once per
    forward SNR of ``cfg.snr_db``. A model whose analog layers are all ideal (no periphery or
    inference noise) reads the same every time and is evaluated once; when no analog layer
    models drift or read noise, the weights do not change after programming and the drift
    accuracies are those measured right after programming. ``accuracy_drift`` /
    ``accuracy_drift_compensated`` repeat the accuracies at the latest drift time.
    """
    accs: list[float] = []
    drift: dict[str, list[float]] = {}
    # Floating-point tiles without inference noise read the same on every realization: one
    # suffices (the std is then exactly 0).
    repeats = 1 if analog.is_deterministic(model) else cfg.repeats
    drifts = analog.drifts(model)
    for r in range(repeats):
        with analog.programmed(model, seed=_mix(seed, r)) as chip:
            accs.append(evaluate(model, test, cfg.batch_size)[0])
            for t in cfg.drift_times_s:
                for compensated in (False, True):
                    if not drifts:  # the programmed weights stay as they are: nothing to re-measure
                        drift.setdefault(drift_metric(t, compensated), []).append(accs[-1])
                        continue
                    chip.drift_to(t, compensate=compensated)
                    drift.setdefault(drift_metric(t, compensated), []).append(
                        evaluate(model, test, cfg.batch_size)[0])
    metrics = {
        "analog_accuracy_mean": statistics.fmean(accs),
        "analog_accuracy_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
    }
    metrics.update({name: statistics.fmean(values) for name, values in drift.items()})
    if cfg.drift_times_s:  # one name whatever the time: what a study sweeping the drift time ranks
        latest = max(cfg.drift_times_s)
        metrics["accuracy_drift"] = metrics[drift_metric(latest, False)]
        metrics["accuracy_drift_compensated"] = metrics[drift_metric(latest, True)]
    for snr in cfg.snr_db:
        with analog.forward_snr(model, snr):
            metrics[snr_metric(snr)] = evaluate(model, test, cfg.batch_size)[0]
    return metrics


def _mix(seed: int, r: int) -> int:
    return (seed * 1_000_003 + 7_919 * (r + 1)) % (2**63 - 1)


__all__ = ["analog_metrics", "drift_metric", "snr_metric", "time_label", "snr_label"]
