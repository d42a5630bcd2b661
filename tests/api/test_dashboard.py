"""The dashboard in headless Chromium (Debian's ``chromium``, driven over the DevTools protocol):
the study list, the Pareto scatter with its front and hover, the hypervolume curve and the
sortable trials table render the study's data; a screenshot is saved."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from api.store import SqlStore
from dse.results import Measurement, TrialRecord
from tests.api.cdp import Chromium
from tests.api.conftest import chromium_path
from tests.api.factories import spec_dict, synthetic_records
from tests.api.server import READ_TOKEN, ServiceProcess

pytestmark = pytest.mark.integration


@pytest.fixture
def served_study(tmp_path: Path) -> Any:
    """A finished study of 60 trials (55 completed, 5 failed) served by ``dse serve``."""
    url = f"sqlite:///{tmp_path / 'dash.db'}"
    store = SqlStore(url)
    study, _ = store.create_study(
        spec_dict(name="dashboard-study"), name="dashboard-study", labels={"team": "ui"}
    )
    assert store.acquire_lease(study.id, "filler", 600)
    for rec in synthetic_records(55, seed=21) + synthetic_records(5, start=55, state="FAILED"):
        store.write_trial(study.id, rec, owner="filler")
    store.finish(study.id, "filler", "COMPLETED")
    store.close()
    service = ServiceProcess(url, tmp_path / "service.log", run_studies="false").start()
    try:
        yield service, study.id
    finally:
        service.stop()


def test_dashboard_renders_the_study(served_study: Any, tmp_path: Path) -> None:
    binary = chromium_path()
    service, sid = served_study
    with service.client(READ_TOKEN) as http:
        pareto = http.get(f"/v1/studies/{sid}/pareto").json()
        by_accuracy = http.get(f"/v1/studies/{sid}/trials?sort=accuracy&order=asc&limit=1").json()["items"][0]
    browser = Chromium(binary, tmp_path / "profile")
    try:
        # The study list.
        browser.navigate(f"{service.url}/#token={READ_TOKEN}")
        rows = browser.wait_for(f"document.querySelectorAll('#studies tr[data-study=\"{sid}\"]').length")
        assert rows == 1
        assert browser.evaluate("document.querySelector('#studies tbody').innerText").count("COMPLETED") == 1

        # The study page: token kept for the tab, data rendered.
        browser.navigate(f"{service.url}/studies/{sid}")
        assert browser.wait_for("document.body.dataset.rendered") == "60"
        assert browser.evaluate("document.getElementById('name').textContent") == "dashboard-study"
        points = browser.evaluate("document.querySelectorAll('#pareto-plot circle.pt').length")
        front = browser.evaluate(
            "[...document.querySelectorAll('#pareto-plot circle.pt.front')]"
            ".map(c => +c.dataset.trial).sort((a, b) => a - b)"
        )
        assert points == len(pareto["points"]["trial"]) == 55
        assert front == sorted(t["number"] for t in pareto["front"]) and front
        assert browser.evaluate(
            "document.querySelectorAll('#pareto-plot circle.pt.infeasible').length"
        ) == pareto["points"]["rank"].count(-1)
        assert browser.evaluate("document.getElementById('x-metric').value") == "accuracy"
        assert browser.evaluate("document.getElementById('y-metric').value") == "train_time_s"
        assert (
            browser.evaluate("document.querySelector('#hv-plot path.hvline').getAttribute('d').length") > 10
        )
        assert browser.evaluate("document.querySelectorAll('#trials-table tbody tr').length") == 50
        assert browser.evaluate("document.getElementById('page').textContent") == "1-50 of 60"

        # Hover over a front point: its parameters are shown.
        n = front[0]
        box = browser.evaluate(
            f"(() => {{ const r = document.querySelector('#pareto-plot circle[data-trial=\"{n}\"]')"
            ".getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        browser.hover(*box)
        tip = browser.wait_for(
            "(t => t.style.display === 'block' && t.textContent.includes('lr =') && t.textContent)"
            "(document.getElementById('tooltip'))"
        )
        assert tip.startswith(f"trial {n} (front)") and "accuracy = " in tip and "hidden = " in tip

        # Choosing other metrics redraws the scatter.
        browser.evaluate(
            "(() => { const s = document.getElementById('y-metric'); s.value = 'n_params';"
            " s.dispatchEvent(new Event('change')); })()"
        )
        browser.wait_for(
            "document.getElementById('y-goal').value === 'min' && "
            "document.querySelector('#pareto-plot .ylabel').textContent.startsWith('n_params')"
        )

        # Sorting the table by a metric (server-side sort).
        browser.evaluate("document.querySelector('#trials-table th[data-sort=\"accuracy\"]').click()")
        first = browser.wait_for(
            "document.querySelector('#trials-table th[data-sort=\"accuracy\"].sorted-asc') && "
            "document.querySelector('#trials-table tbody tr').dataset.trial"
        )
        assert int(first) == by_accuracy["number"]

        shot = browser.screenshot(tmp_path / "dashboard.png")
        assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 20_000
    finally:
        browser.close()


@pytest.fixture
def priced_study(tmp_path: Path) -> Any:
    """A study whose trials carry the cost breakdown of real designs (the cost model on a digits
    FCNN, three ADC resolutions)."""
    from dse.trial.run import static_cost

    url = f"sqlite:///{tmp_path / 'cost.db'}"
    store = SqlStore(url)
    study, _ = store.create_study(spec_dict(name="cost-study"), name="cost-study")
    assert store.acquire_lease(study.id, "filler", 600)
    for i, bits in enumerate((4, 6, 9)):
        report = static_cost({"model": {"hidden": [64, 32]},
                              "hardware": {"preset": "gokmen_vlasov", "forward.out_bits": bits}})
        rec = TrialRecord.pending(f"trial-{i}", i, {"adc_bits": bits}).start()
        rec = rec.add_measurement(Measurement.from_report({"epoch": 1, "accuracy": 0.5 + 0.1 * i}))
        rec = rec.complete([{"accuracy": 0.6 + 0.1 * i, "train_time_s": 1.0 + i, **report.metrics()}],
                           details=[{"cost": report.to_dict(), "training_cost": None}])
        store.write_trial(study.id, rec, owner="filler")
    store.finish(study.id, "filler", "COMPLETED")
    store.close()
    service = ServiceProcess(url, tmp_path / "service.log", run_studies="false").start()
    try:
        yield service, study.id
    finally:
        service.stop()


def test_trial_page_shows_the_cost_breakdown(priced_study: Any, tmp_path: Path) -> None:
    binary = chromium_path()
    service, sid = priced_study
    with service.client(READ_TOKEN) as http:
        trial = http.get(f"/v1/studies/{sid}/trials/2").json()
    cost = trial["details"][0]["cost"]
    browser = Chromium(binary, tmp_path / "profile")
    try:
        browser.navigate(f"{service.url}/studies/{sid}#token={READ_TOKEN}")
        browser.wait_for("document.body.dataset.rendered")
        # the cost metrics are offered as axes of the Pareto plot
        options = browser.evaluate("[...document.getElementById('x-metric').options].map(o => o.value)")
        assert {"energy_per_inference_nj", "area_mm2", "tops_per_w", "latency_per_inference_us"} <= set(options)
        # the trials table links to the trial page
        href = browser.evaluate("document.querySelector('#trials-table tbody tr[data-trial=\"2\"] a').href")
        browser.navigate(href)
        assert browser.wait_for("document.body.dataset.rendered") == "COMPLETED"
        layers = [layer["name"] for layer in cost["layers"]]
        bars = browser.evaluate(
            "[...document.querySelectorAll('#energy-plot rect.bar')].map(r => [r.dataset.layer, r.dataset.component])")
        assert {b[0] for b in bars} == set(layers)
        nonzero = {(layer["name"], c) for layer in cost["layers"] for c, v in layer["energy_pj"].items() if v > 0}
        assert {tuple(b) for b in bars} == nonzero  # one segment per layer and component
        area_bars = browser.evaluate("document.querySelectorAll('#area-plot rect.bar').length")
        assert area_bars == sum(1 for layer in cost["layers"] for v in layer["area_um2"].values() if v > 0)
        legend = browser.evaluate("[...document.querySelectorAll('#cost-legend .key')].map(k => k.dataset.component)")
        assert "adc" in legend and "buffer" in legend
        assert browser.evaluate("document.querySelectorAll('#cost-table tbody tr').length") == len(layers)
        totals = browser.evaluate("document.getElementById('cost-totals').innerText")
        assert "energy per inference" in totals and "nJ" in totals and "rram22" in totals
        shot = browser.screenshot(tmp_path / "trial.png")
        assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 20_000
    finally:
        browser.close()
