"""Trial records, sinks and the Parquet results directory."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dse.errors import ConflictError, NotFoundError
from dse.results import (
    MEASUREMENTS_FILE,
    STUDY_FILE,
    TRIALS_FILE,
    Measurement,
    MemorySink,
    ParquetResults,
    TeeSink,
    TrialRecord,
    TrialSink,
    TrialState,
    aggregate_repeats,
    export_results,
    normalize_metrics,
    read_study,
    read_trials,
    read_trials_table,
)
from dse.spec import StudySpec, load_spec

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture(scope="module")
def spec() -> StudySpec:
    return load_spec({
        "name": "results-test",
        "base": {"dataset": {"name": "digits"}, "model": {"name": "fcnn", "hidden": [16]}, "training": {"epochs": 2}},
        "parameters": [
            {"name": "lr", "target": "training.lr", "type": "float", "low": 0.001, "high": 0.5, "log": True},
            {"name": "batch", "target": "training.batch_size", "type": "int", "low": 16, "high": 64, "step": 16},
            {"name": "hidden", "target": "model.hidden", "type": "categorical", "values": [[16], [32, 16]]},
            {"name": "preset", "target": "hardware.preset", "type": "categorical", "values": ["ideal", "gokmen_vlasov"]},
            {"name": "dw", "target": "hardware.device.dw_min", "type": "discrete", "values": [0.001, 0.002],
             "condition": {"parameter": "preset", "equals": "gokmen_vlasov"}},
        ],
        "objectives": [{"metric": "accuracy", "goal": "max"}, {"metric": "train_time_s", "goal": "min"}],
        "constraints": ["n_tiles <= 4"],
        "searcher": {"type": "random", "seed": 1},
        "budget": {"max_trials": 10},
        "repeats": 2,
    })


def completed(i: int, acc: float = 0.9, preset: str = "gokmen_vlasov") -> TrialRecord:
    params = {"lr": 0.01 * (i + 1), "batch": 32, "hidden": [32, 16], "preset": preset}
    if preset == "gokmen_vlasov":
        params["dw"] = 0.002
    r = TrialRecord.pending(f"t{i:03d}", i, params, seeds=(0, 1), created_at=T0)
    r = r.start(node=f"node-{i % 2}", at=T0 + timedelta(seconds=1))
    for rep in (0, 1):
        for epoch in (1, 2):
            r = r.add_measurement(Measurement(epoch=epoch, repeat=rep, metrics={"accuracy": acc * epoch / 2,
                                                                                "loss": 1.0 / epoch},
                                              reported_at=T0 + timedelta(seconds=epoch)))
    return r.complete([{"accuracy": acc, "train_time_s": 2.0 + i, "n_tiles": 2},
                       {"accuracy": acc - 0.1, "train_time_s": 2.5 + i, "n_tiles": 2}], at=T0 + timedelta(seconds=5))


# -- records ------------------------------------------------------------------------------------
def test_aggregate_repeats_mean_and_sample_std() -> None:
    mean, std = aggregate_repeats([{"a": 1.0, "b": 5.0}, {"a": 3.0}, {"a": 5.0}])
    assert mean == {"a": 3.0, "b": 5.0}
    assert std["a"] == pytest.approx(2.0)  # sqrt(((1-3)^2 + 0 + (5-3)^2) / (3 - 1))
    assert "b" not in std  # reported by one repeat only
    mean, std = aggregate_repeats([{"a": 1.0}, {"a": math.nan}])
    assert math.isnan(mean["a"]) and math.isnan(std["a"])


def test_normalize_metrics_flattens_and_rejects_non_numbers() -> None:
    assert normalize_metrics({"acc": 1, "drift": {"1h": 0.5, "1d": True}}) == {"acc": 1.0, "drift.1h": 0.5,
                                                                              "drift.1d": 1.0}
    with pytest.raises(ValueError, match=r"metrics\.device: got 'x'"):
        normalize_metrics({"device": "x"})


def test_record_life_cycle_and_derived_fields() -> None:
    r = completed(3)
    assert r.state is TrialState.COMPLETED and r.state.is_finished
    assert r.metrics["accuracy"] == pytest.approx(0.85) and r.metrics_std["accuracy"] == pytest.approx(0.0707107, rel=1e-5)
    assert r.n_repeats == 2 and r.duration_s == 4.0 and r.node == "node-1" and r.error is None
    assert len(r.measurements) == 4


@pytest.mark.parametrize(("first", "then"), [
    (TrialState.RUNNING, TrialState.PENDING),
    (TrialState.COMPLETED, TrialState.RUNNING),
    (TrialState.COMPLETED, TrialState.FAILED),
    (TrialState.FAILED, TrialState.COMPLETED),
    (TrialState.PRUNED, TrialState.PENDING),
    (TrialState.CANCELLED, TrialState.COMPLETED),
])
def test_states_never_move_backwards(first: TrialState, then: TrialState) -> None:
    r = TrialRecord(trial_id="x", number=0).advance(first)
    with pytest.raises(ConflictError, match=f"from {first.value} to {then.value}"):
        r.advance(then)


def test_allowed_transitions() -> None:
    r = TrialRecord.pending("x", 0, {})
    assert r.cancel().state is TrialState.CANCELLED  # pending may end without running
    # a cancelled (interrupted) trial is re-opened when its study resumes and re-runs it
    assert r.start().cancel("interrupted").advance(TrialState.RUNNING).state is TrialState.RUNNING
    running = r.start()
    assert running.advance(TrialState.RUNNING).state is TrialState.RUNNING
    failed = running.fail("diverged at epoch 3: loss=nan", repeat_metrics=[{"accuracy": 0.1}])
    assert failed.error.startswith("diverged") and failed.metrics == {"accuracy": 0.1} and failed.finished_at
    assert running.prune().error == "stopped early by the scheduler"


def test_record_validation_names_the_field() -> None:
    with pytest.raises(ValueError, match="trial_id"):
        TrialRecord(trial_id="", number=0)
    with pytest.raises(ValueError, match="number"):
        TrialRecord(trial_id="a", number=-1)
    with pytest.raises(ValueError, match="naive datetime"):
        TrialRecord(trial_id="a", number=0, created_at=datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="state"):
        TrialRecord(trial_id="a", number=0, state="DONE")


def test_memory_and_tee_sinks_enforce_transitions() -> None:
    memory, other = MemorySink(), MemorySink()
    tee = TeeSink(memory, other)
    assert isinstance(tee, TrialSink) and isinstance(memory, TrialSink)
    r = completed(0)
    tee.write_trial(r)
    assert memory.get("t000") == r == other.get("t000")
    with pytest.raises(ConflictError):
        tee.write_trial(TrialRecord.pending("t000", 0, {}))


# -- Parquet --------------------------------------------------------------------------------------
EXPECTED_COLUMNS = [
    ("trial_id", pa.string()), ("number", pa.int64()), ("state", pa.string()),
    ("param.lr", pa.float64()), ("param.batch", pa.int64()), ("param.hidden", pa.string()),
    ("param.preset", pa.string()), ("param.dw", pa.float64()),
    ("metric.accuracy", pa.float64()), ("metric.n_tiles", pa.float64()), ("metric.train_time_s", pa.float64()),
    ("metric_std.accuracy", pa.float64()), ("metric_std.n_tiles", pa.float64()),
    ("metric_std.train_time_s", pa.float64()),
    ("n_repeats", pa.int64()), ("seeds", pa.list_(pa.int64())), ("repeat_metrics", pa.string()),
    ("details", pa.string()),
    ("created_at", pa.timestamp("us", tz="UTC")), ("started_at", pa.timestamp("us", tz="UTC")),
    ("finished_at", pa.timestamp("us", tz="UTC")), ("duration_s", pa.float64()), ("node", pa.string()),
    ("error", pa.string()), ("attempts", pa.int64()),
]


def _columns(table: pa.Table) -> list[tuple[str, pa.DataType]]:
    return [(f.name, f.type) for f in table.schema]


def test_schema_is_explicit_and_stable(tmp_path: Path, spec: StudySpec) -> None:
    with ParquetResults(tmp_path, spec) as res:
        # Written at creation: the spec's parameters and metrics are columns before any trial.
        assert _columns(read_trials_table(tmp_path)) == EXPECTED_COLUMNS
        res.write_trial(TrialRecord.pending("t000", 0, {"lr": 0.1, "batch": 16, "hidden": [16], "preset": "ideal"}))
        assert _columns(read_trials_table(tmp_path)) == EXPECTED_COLUMNS
        res.write_trial(completed(1))
        assert _columns(read_trials_table(tmp_path)) == EXPECTED_COLUMNS
    meas = pq.read_table(tmp_path / MEASUREMENTS_FILE)
    assert _columns(meas) == [("trial_id", pa.string()), ("number", pa.int64()), ("repeat", pa.int64()),
                              ("epoch", pa.int64()), ("reported_at", pa.timestamp("us", tz="UTC")),
                              ("metric.accuracy", pa.float64()), ("metric.loss", pa.float64())]
    assert meas.num_rows == 4


def test_extra_metrics_add_sorted_columns_after_the_declared_ones(tmp_path: Path, spec: StudySpec) -> None:
    r = TrialRecord.pending("a", 0, {"lr": 0.1, "batch": 16, "hidden": [16], "preset": "ideal"}).start()
    with ParquetResults(tmp_path, spec) as res:
        res.write_trial(r.complete([{"accuracy": 0.5, "energy_uj": 3.0, "train_time_s": 1.0, "n_tiles": 1}]))
    names = read_trials_table(tmp_path).column_names
    assert names.index("metric.energy_uj") < names.index("metric.n_tiles")  # metric columns sorted by name
    assert names.index("metric.train_time_s") < names.index("metric_std.accuracy")


def test_each_change_is_written_and_reads_back_equal(tmp_path: Path, spec: StudySpec) -> None:
    records = [completed(0), completed(1, acc=0.7, preset="ideal")]
    failed = TrialRecord.pending("t002", 2, {"lr": 0.3, "batch": 64, "hidden": [16], "preset": "ideal"}).start()
    failed = failed.fail("diverged at epoch 1: loss=nan", repeat_metrics=[{"accuracy": math.nan}])
    with ParquetResults(tmp_path, spec) as res:
        for n, r in enumerate([*records, failed], start=1):
            res.write_trial(r)
            assert read_trials_table(tmp_path).num_rows == n  # written as each trial finishes
    back = read_trials(tmp_path)
    assert back[:2] == records
    assert back[2].state is TrialState.FAILED and back[2].error == failed.error
    assert math.isnan(back[2].metrics["accuracy"])
    assert back[1].params == {"lr": 0.02, "batch": 32, "hidden": [32, 16], "preset": "ideal"}  # inactive dw absent
    assert read_study(tmp_path) == spec.to_dict()


def test_readable_by_pandas_and_duckdb(tmp_path: Path, spec: StudySpec) -> None:
    duckdb = pytest.importorskip("duckdb", reason="duckdb is in the test extra; install it to check this reader")
    with ParquetResults(tmp_path, spec) as res:
        for i in range(3):
            res.write_trial(completed(i, acc=0.5 + 0.1 * i))
    frame = pd_read(tmp_path / TRIALS_FILE)
    assert list(frame["trial_id"]) == ["t000", "t001", "t002"]
    assert frame["metric.accuracy"].tolist() == pytest.approx([0.45, 0.55, 0.65])
    con = duckdb.connect()
    rows = con.execute(
        f"SELECT trial_id, \"param.batch\", \"metric.train_time_s\" FROM read_parquet('{tmp_path / TRIALS_FILE}') "
        "WHERE state = 'COMPLETED' ORDER BY \"metric.accuracy\" DESC LIMIT 1").fetchall()
    assert rows == [("t002", 32, pytest.approx(4.25))]  # mean of 2.0 + 2 and 2.5 + 2
    epochs = con.execute(f"SELECT count(*) FROM read_parquet('{tmp_path / MEASUREMENTS_FILE}')").fetchone()
    assert epochs == (12,)


def pd_read(path: Path):
    import pandas as pd

    return pd.read_parquet(path)


def test_backward_state_is_refused_and_file_unchanged(tmp_path: Path, spec: StudySpec) -> None:
    with ParquetResults(tmp_path, spec) as res:
        res.write_trial(completed(0))
        before = (tmp_path / TRIALS_FILE).read_bytes()
        with pytest.raises(ConflictError):
            res.write_trial(TrialRecord.pending("t000", 0, completed(0).params))
        assert (tmp_path / TRIALS_FILE).read_bytes() == before


def test_failed_write_leaves_previous_file_valid(tmp_path: Path, spec: StudySpec, monkeypatch: pytest.MonkeyPatch) -> None:
    with ParquetResults(tmp_path, spec) as res:
        res.write_trial(completed(0))
        before = read_trials(tmp_path)

        def crash(table: pa.Table, where: object, **kwargs: object) -> None:
            Path(str(where)).write_bytes(b"PAR1 half a file")
            raise OSError("disk full")

        monkeypatch.setattr(pq, "write_table", crash)
        with pytest.raises(OSError, match="disk full"):
            res.write_trial(completed(1))
    assert read_trials(tmp_path) == before
    assert not list(tmp_path.glob(".*.tmp"))


def test_process_killed_mid_write_leaves_previous_file_valid(tmp_path: Path, spec: StudySpec) -> None:
    with ParquetResults(tmp_path, spec) as res:
        res.write_trial(completed(0))
    before = read_trials(tmp_path)
    child = textwrap.dedent(f"""
        import os, sys
        import pyarrow.parquet as pq
        sys.path.insert(0, {str(ROOT / 'tests' / 'dse')!r})
        from test_results import completed
        from dse.results import ParquetResults
        from dse.spec import load_spec
        real = pq.write_table
        def die(table, where, **kw):
            real(table.slice(0, 1), where, **kw)
            with open(where, "r+b") as fh:
                fh.truncate(100)  # a torn file, then the process dies without cleanup
            os._exit(9)
        spec = load_spec({spec.to_dict()!r})
        res = ParquetResults({str(tmp_path)!r}, spec, resume=True)
        pq.write_table = die
        res.write_trial(completed(1))
    """)
    proc = subprocess.run([sys.executable, "-c", child], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 9, proc.stderr
    assert list(tmp_path.glob(".*.tmp"))  # the torn temporary file is there ...
    assert read_trials(tmp_path) == before  # ... and readers never see it
    with ParquetResults(tmp_path, spec, resume=True) as res:  # resuming cleans it up
        assert [r.trial_id for r in res.finished()] == ["t000"]
    assert not list(tmp_path.glob(".*.tmp"))


def test_existing_results_need_resume_and_the_same_spec(tmp_path: Path, spec: StudySpec) -> None:
    with ParquetResults(tmp_path, spec) as res:
        res.write_trial(completed(0))
        res.write_trial(TrialRecord.pending("t001", 1, completed(1).params).start())
    with pytest.raises(ConflictError, match="resume"):
        ParquetResults(tmp_path, spec)
    other = load_spec({**spec.to_dict(), "budget": {"max_trials": 99}})
    with pytest.raises(ConflictError, match="differs from this one in budget"):
        ParquetResults(tmp_path, other, resume=True)
    with ParquetResults(tmp_path, spec, resume=True) as res:
        assert [r.trial_id for r in res.finished()] == ["t000"]
        assert [r.trial_id for r in res.unfinished()] == ["t001"]
        assert res.next_number() == 2
        res.write_trial(res.get("t001").fail("interrupted"))
    assert [r.state for r in read_trials(tmp_path)] == [TrialState.COMPLETED, TrialState.FAILED]


def test_one_writer_at_a_time(tmp_path: Path, spec: StudySpec) -> None:
    first = ParquetResults(tmp_path, spec)
    with pytest.raises(ConflictError, match="another process"):
        ParquetResults(tmp_path, spec, resume=True)
    first.close()
    with pytest.raises(ConflictError, match="closed"):
        first.write_trial(completed(0))
    ParquetResults(tmp_path, spec, resume=True).close()


def test_export_from_records_replaces_the_directory(tmp_path: Path, spec: StudySpec) -> None:
    with ParquetResults(tmp_path, spec) as res:
        res.write_trial(completed(5))
    records = [completed(0), completed(1)]
    export_results(tmp_path, records, spec)
    assert read_trials(tmp_path) == records
    assert (tmp_path / STUDY_FILE).is_file()


def test_reading_a_missing_directory_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="not a results directory"):
        read_trials(tmp_path / "absent")


def test_updates_of_one_trial_are_reflected_after_each_write(tmp_path: Path, spec: StudySpec) -> None:
    final = completed(0)
    steps = [TrialRecord.pending("t000", 0, final.params, seeds=(0, 1), created_at=T0)]
    steps.append(steps[-1].start(node="node-0", at=T0))
    steps.append(steps[-1].add_measurement(final.measurements[0]))
    steps.append(steps[-1].complete([{"accuracy": 0.5, "train_time_s": 1.0, "n_tiles": 1}], at=T0))
    with ParquetResults(tmp_path, spec, fsync=False) as res:  # the row cache must not serve stale rows
        for record in steps:
            res.write_trial(record)
            assert read_trials(tmp_path) == [record]


def test_one_plain_form_round_trips_every_field_for_the_store_and_the_parquet_writer(tmp_path: Path,
                                                                                     spec: StudySpec) -> None:
    from dse.results import record_from_plain, record_to_plain, records_from_tables, trials_table

    rec = TrialRecord.pending("t-7", 7, {"lr": 0.1, "batch": 16, "hidden": [16], "preset": "ideal"}, seeds=(3, 4))
    rec = rec.start(node="n9").restart().add_measurement(Measurement.from_report({"epoch": 1, "accuracy": 0.4}))
    rec = rec.complete([{"accuracy": 0.8, "train_time_s": float("nan")}, {"accuracy": 0.9, "train_time_s": 2.0}],
                       details=[{"cost": {"area_mm2": 1.5}}, None])
    plain = record_to_plain(rec)
    assert json.loads(json.dumps(plain)) is not None  # plain data (NaN is written by json as NaN)
    assert plain["attempts"] == 2 and plain["details"] == [{"cost": {"area_mm2": 1.5}}, None]
    back = record_from_plain(plain, rec.measurements)
    assert _same(back, rec)
    (from_parquet,) = records_from_tables(trials_table([rec], spec))
    assert _same(from_parquet, dataclasses.replace(rec, measurements=()))


def _same(a: TrialRecord, b: TrialRecord) -> bool:
    """Equal records, NaN equal to NaN."""
    return json.dumps(record_to_plain_sorted(a), default=str) == json.dumps(record_to_plain_sorted(b), default=str) \
        and a.measurements == b.measurements


def record_to_plain_sorted(r: TrialRecord) -> dict:
    from dse.results import record_to_plain

    return {k: v for k, v in sorted(record_to_plain(r).items())}


def test_incremental_tables_equal_the_tables_built_whole(spec: StudySpec) -> None:
    """Random writes (new trials, rewrites of stored ones, a new metric, a parameter outside the
    spec, trials inserted among the others): after each batch the incremental tables equal
    trials_table / measurements_table of all the records."""
    import random as _random

    from dse.results import IncrementalTables, measurements_table, trials_table

    rng = _random.Random(3)
    tables = IncrementalTables(spec)
    tables.REBUILD_FRACTION = 0.25  # small tables: exercise both the partial and the full path
    latest: dict[int, TrialRecord] = {}
    for step in range(40):
        batch = []
        for k in range(rng.randint(1, 4)):
            if latest and rng.random() < 0.4:
                number = rng.choice(sorted(latest))
                old = latest[number]
                base = TrialRecord.pending(old.trial_id, number, dict(old.params), seeds=(0, 1), created_at=T0)
                rec = completed(number, acc=rng.random()) if rng.random() < 0.7 else base.start(node="n", at=T0)
                rec = dataclasses.replace(rec, trial_id=old.trial_id, params=dict(old.params))
            else:
                # New trials leave gaps in the numbers; one in ten fills a gap among the others.
                gaps = sorted(set(range(max(latest, default=0))) - set(latest))
                number = rng.choice(gaps) if gaps and rng.random() < 0.1 else max(latest, default=-2) + 2
                rec = completed(number, acc=rng.random(), preset=rng.choice(["ideal", "gokmen_vlasov"]))
            if step == 17 and k == 0:  # a metric no other trial has
                rec = TrialRecord.pending(rec.trial_id, rec.number, dict(rec.params), seeds=(0,), created_at=T0)
                rec = rec.start(node="n", at=T0).complete([{"accuracy": 0.5, "n_tiles": 1, "energy_nj": 1.5}], at=T0)
                energy = rec
            if step == 30 and k == 0:  # rewritten without it: the column goes away
                rec = dataclasses.replace(completed(energy.number), trial_id=energy.trial_id, params=dict(energy.params))
            if step == 23 and k == 0:
                rec = dataclasses.replace(rec, params={**rec.params, "extra": "x"})
            latest[rec.number] = rec
            batch.append(rec)
        tables.update(batch)
        records = list(latest.values())
        assert ("metric.energy_nj" in tables.trials().column_names) == (17 <= step < 30)
        assert tables.trials().equals(trials_table(records, spec)), f"trials after step {step}"
        assert tables.measurements().equals(measurements_table(records)), f"measurements after step {step}"
