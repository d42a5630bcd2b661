"""Figures of a study's results, computed from its trials: the Pareto front and hypervolume curves.

>>> from dse.results import read_trials
>>> from dse.results.plots import pareto_figure
>>> fig = pareto_figure(read_trials("results/quickstart"), ["accuracy:max", "energy_per_inference_nj:min"])
>>> fig.savefig("front.pdf")

Functions return :class:`matplotlib.figure.Figure` objects built without pyplot (no global
backend is set, so they display in notebooks and save to PNG, SVG or PDF alike). matplotlib is
the optional ``plot`` extra; without it they raise :class:`~dse.extras.MissingExtraError` saying
so. Axis labels carry units read from the metric names' suffixes (:func:`metric_label`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dse.extras import require

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from dse.spec import ConstraintSpec, ObjectiveSpec

UNITS = {
    "j": "J", "mj": "mJ", "uj": "µJ", "nj": "nJ", "pj": "pJ", "fj": "fJ",
    "s": "s", "ms": "ms", "us": "µs", "ns": "ns", "ps": "ps",
    "m2": "m²", "cm2": "cm²", "mm2": "mm²", "um2": "µm²",
    "w": "W", "mw": "mW", "uw": "µW", "nw": "nW",
    "hz": "Hz", "khz": "kHz", "mhz": "MHz", "ghz": "GHz",
    "db": "dB", "pct": "%", "bits": "bits", "b": "B", "kb": "kB", "mb": "MB", "gb": "GB",
}
"""Metric-name suffixes (``energy_uj``, ``area_mm2``, ``train_time_s``) and the units they name."""

ACRONYMS = {"adc": "ADC", "dac": "DAC", "snr": "SNR", "tops": "TOPS", "mvm": "MVM", "sar": "SAR", "pcm": "PCM",
            "ecram": "ECRAM", "rram": "RRAM", "reram": "ReRAM", "lr": "learning rate"}

FRONT_COLOR = "#d62728"
DOMINATED_COLOR = "#7f7f7f"
FILE_FORMATS = ("png", "svg", "pdf")
"""Formats ``--plot FILE`` writes, from the file's suffix."""


def metric_label(name: str) -> str:
    """An axis label for a metric: ``energy_per_inference_nj`` -> ``energy per inference (nJ)``,
    ``area_mm2`` -> ``area (mm²)``, ``tops_per_w`` -> ``TOPS/W``, ``n_tiles`` -> ``number of
    tiles``, ``accuracy`` -> ``accuracy``."""
    words = [w for w in name.split("_") if w]
    if not words:
        return name
    unit = UNITS.get(words[-1].lower()) if len(words) > 1 else None
    if unit is not None:
        words = words[:-1]
    if unit is not None and len(words) >= 2 and words[-1] == "per":
        return " ".join(_word(w) for w in words[:-1]) + "/" + unit
    if words[0] == "n" and len(words) > 1:
        words = ["number", "of", *words[1:]]
    text = " ".join(_word(w) for w in words)
    return f"{text} ({unit})" if unit else text


def _word(w: str) -> str:
    return ACRONYMS.get(w.lower(), w)


def _figure(**kwargs: Any) -> Figure:
    require("matplotlib", "plotting")
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _split(records: Sequence[Any], objectives: Sequence[ObjectiveSpec],
           constraints: Sequence[ConstraintSpec]) -> tuple[list[tuple[float, ...]], list[tuple[float, ...]],
                                                         list[tuple[float, ...]]]:
    """(front, dominated, infeasible) objective values of the completed trials."""
    from dse.pareto import objective_values, rank_trials

    ranks = rank_trials(records, objectives, constraints)
    front, dominated, infeasible = [], [], []
    for r in records:
        if str(getattr(r.state, "value", r.state)) != "COMPLETED":
            continue
        values = objective_values(r, objectives)
        if values is None:
            continue
        rank = ranks.get(r.trial_id)
        (infeasible if rank is None else front if rank == 0 else dominated).append(values)
    return front, dominated, infeasible


def _staircase(front: list[tuple[float, float]], goals: tuple[str, str]) -> tuple[list[float], list[float]]:
    """Vertices of the front's attainment line: the boundary of what the front dominates."""
    sign = [1.0 if g == "minimize" else -1.0 for g in goals]
    pts = sorted((x * sign[0], y * sign[1]) for x, y in front)  # minimized: x ascending, y descending
    xs: list[float] = []
    ys: list[float] = []
    for i, (x, y) in enumerate(pts):
        if i:
            xs.append(x)
            ys.append(pts[i - 1][1])
        xs.append(x)
        ys.append(y)
    return [x * sign[0] for x in xs], [y * sign[1] for y in ys]


def _goal_note(o: ObjectiveSpec) -> str:
    return "higher is better" if o.goal == "maximize" else "lower is better"


def pareto_figure(records: Sequence[Any], objectives: Sequence[Any], constraints: Sequence[Any] = (), *,
                  title: str | None = None) -> Figure:
    """The front and the dominated points of ``records`` over 2 or 3 objectives.

    Two objectives: a scatter of every completed trial — dominated ones grey, those violating a
    constraint as grey crosses, the front in red joined by its attainment line (a step line: the
    boundary of the region the front dominates). Three: a scatter matrix of each pair of
    objectives with the front highlighted, and each objective's distribution on the diagonal.
    Objectives are ``"metric:min|max"`` strings or :class:`~dse.spec.ObjectiveSpec`.
    """
    from dse.pareto import as_objectives

    objs = as_objectives(list(objectives))
    if len(objs) not in (2, 3):
        raise ValueError(f"objectives: got {len(objs)} ({', '.join(o.metric for o in objs)}); "
                         "accepted: 2 (a scatter with the front) or 3 (a scatter matrix)")
    front, dominated, infeasible = _split(records, objs, tuple(constraints))
    n_front = len(front)
    heading = (f"{title}: " if title else "") + f"Pareto front, {n_front} of {n_front + len(dominated)} eligible trials"
    if len(objs) == 2:
        fig = _figure(figsize=(6.4, 4.8), layout="constrained")
        ax = fig.add_subplot()
        if infeasible:
            ax.scatter(*zip(*infeasible), marker="x", s=18, color=DOMINATED_COLOR, alpha=0.5,
                       label="violates a constraint")
        if dominated:
            ax.scatter(*zip(*dominated), s=18, color=DOMINATED_COLOR, alpha=0.7, label="dominated")
        if front:
            xs, ys = _staircase(front, (objs[0].goal, objs[1].goal))
            ax.plot(xs, ys, color=FRONT_COLOR, linewidth=1.2)
            ax.scatter(*zip(*front), s=30, color=FRONT_COLOR, zorder=3, label="Pareto front")
        ax.set_xlabel(metric_label(objs[0].metric))
        ax.set_ylabel(metric_label(objs[1].metric))
        ax.set_title(heading, fontsize=10)
        ax.text(0.99, 0.01, f"x: {_goal_note(objs[0])}; y: {_goal_note(objs[1])}", transform=ax.transAxes,
                ha="right", va="bottom", fontsize=7, color="#555555")
        ax.grid(True, alpha=0.3)
        if front or dominated or infeasible:
            ax.legend(fontsize=8)
        return fig
    fig = _figure(figsize=(8.5, 8.0), layout="constrained")
    axes = fig.subplots(3, 3)
    for i in range(3):
        for j in range(3):
            ax = axes[i][j]
            if i == j:
                values = [p[i] for p in front + dominated]
                if values:
                    import numpy as np

                    edges = np.histogram_bin_edges(values, bins=min(20, max(5, len(values) // 3)))
                    ax.hist(values, bins=edges, color=DOMINATED_COLOR, alpha=0.7)
                    ax.hist([p[i] for p in front], bins=edges, color=FRONT_COLOR, alpha=0.8)
            else:
                if infeasible:
                    ax.scatter([p[j] for p in infeasible], [p[i] for p in infeasible], marker="x", s=10,
                               color=DOMINATED_COLOR, alpha=0.5)
                if dominated:
                    ax.scatter([p[j] for p in dominated], [p[i] for p in dominated], s=10,
                               color=DOMINATED_COLOR, alpha=0.7, label="dominated")
                if front:
                    ax.scatter([p[j] for p in front], [p[i] for p in front], s=16, color=FRONT_COLOR,
                               label="Pareto front")
            ax.set_xlabel(metric_label(objs[j].metric), fontsize=8)
            ax.set_ylabel("trials" if i == j else metric_label(objs[i].metric), fontsize=8)
            ax.tick_params(labelsize=7)
    fig.suptitle(heading, fontsize=10)
    return fig


def hypervolume_figure(studies: Sequence[tuple[Any, Sequence[Any]]], objectives: Sequence[Any] | None = None,
                       constraints: Sequence[Any] | None = None, *, labels: Sequence[str] | None = None) -> Figure:
    """Hypervolume against the number of trials, one curve per study, on one figure.

    ``studies`` holds ``(spec, records)`` pairs; ``objectives`` default to the first study's,
    ``constraints`` to each study's own. Every curve is normalized with one
    :class:`~dse.pareto.Normalization` over the eligible trials of all the studies together, so
    that curves of different searchers on the same space compare (a study's own normalization
    would put each of them at its own scale). Labels default to ``name (searcher)``.
    """
    from dse.pareto import Normalization, as_objectives, eligible, hypervolume_history

    if not studies:
        raise ValueError("studies: got none; accepted: one or more (spec, records) pairs")
    objs = as_objectives(list(objectives)) if objectives else tuple(studies[0][0].objectives)
    if not 1 <= len(objs) <= 3:
        raise ValueError(f"objectives: got {len(objs)}; accepted: 1 to 3 (exact hypervolume)")
    cons = [tuple(spec.constraints) if constraints is None else tuple(constraints) for spec, _ in studies]
    pooled = [v for (_, records), c in zip(studies, cons) for _, v in eligible(records, objs, c)]
    import numpy as np

    norm = Normalization.from_values(np.asarray(pooled, dtype=np.float64).reshape(-1, len(objs)), objs)
    fig = _figure(figsize=(6.4, 4.4), layout="constrained")
    ax = fig.add_subplot()
    for k, ((spec, records), c) in enumerate(zip(studies, cons)):
        history = hypervolume_history(records, objs, c, normalization=norm)
        label = labels[k] if labels else f"{spec.name} ({spec.searcher.type})"
        ax.step(range(1, len(history) + 1), history, where="post", label=label)
    ax.set_xlabel("trials")
    ax.set_ylabel("hypervolume (normalized)")
    ax.set_ylim(bottom=0.0)
    ax.set_title("hypervolume over " + ", ".join(f"{o.metric} ({'max' if o.goal == 'maximize' else 'min'})"
                                                 for o in objs), fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def save_figure(fig: Figure, path: str) -> None:
    """Write ``fig`` to ``path`` as PNG, SVG or PDF (from the suffix)."""
    from pathlib import Path

    suffix = Path(path).suffix.lstrip(".").lower()
    if suffix not in FILE_FORMATS:
        raise ValueError(f"--plot: got {path!r}; accepted: a file name ending in .png, .svg or .pdf")
    fig.savefig(path, format=suffix, dpi=150)
