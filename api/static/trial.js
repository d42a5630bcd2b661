// Trial page: parameters and metrics, the cost breakdown of the design (energy and area per
// layer, stacked by component, with a table) and the per-epoch validation accuracy.
"use strict";

(() => {
  const { api, el, fmt, duration } = DSE;
  const parts = location.pathname.split("/").filter(Boolean);  // studies / ID / trials / N
  const studyId = decodeURIComponent(parts[1]);
  const number = +parts[3];
  const base = "/v1/studies/" + encodeURIComponent(studyId);
  const tooltip = document.getElementById("tooltip");
  const COLORS = {
    array: "#4c6ef5", adc: "#d9480f", dac: "#f59f00", sample_hold: "#94d82d", shift_add: "#15aabf",
    accumulate: "#845ef7", digital: "#e64980", buffer: "#868e96", interconnect: "#20c997", static: "#343a40",
    periphery: "#adb5bd",
  };

  function renderSummary(t) {
    document.title = `trial ${t.number} · analog-dse`;
    document.getElementById("number").textContent = t.number;
    const badge = document.getElementById("state");
    badge.textContent = t.state;
    badge.className = "state " + t.state;
    const items = [["id", t.trial_id], ["duration", duration(t.duration_s)], ["node", t.node || ""],
      ...Object.entries(t.params).map(([k, v]) => [k, fmt(v)])];
    document.getElementById("summary").replaceChildren(...items.map(([k, v]) =>
      el("div", {}, el("span", {}, k), String(v))));
    document.getElementById("error").textContent = t.error || "";
    const link = document.getElementById("study-link");
    link.href = "/studies/" + encodeURIComponent(studyId);
    link.textContent = "study " + studyId;
  }

  function renderMetrics(t) {
    const rows = Object.keys(t.metrics).sort().map((k) => el("tr", {},
      el("td", {}, k), el("td", { class: "num" }, fmt(t.metrics[k])),
      el("td", { class: "num muted" }, t.metrics_std[k] === undefined ? "" : "± " + fmt(t.metrics_std[k]))));
    document.querySelector("#metrics-table tbody").replaceChildren(...rows);
  }

  // Vertical bars, one per layer, stacked by component; hover names the segment.
  function stacked(root, layers, field, scale, unit) {
    Plot.clear(root);
    const comps = [...new Set(layers.flatMap((l) => Object.keys(l[field]).filter((c) => l[field][c] > 0)))];
    const totals = layers.map((l) => comps.reduce((s, c) => s + (l[field][c] || 0) * scale, 0));
    if (!layers.length || !Math.max(...totals)) return comps;
    const W = 560, H = 320;
    const { x, y } = Plot.frame(root, [0, layers.length], [0, ...totals],
      { width: W, height: H, xLabel: "layer", yLabel: unit, xTicks: false });
    const slot = (x(1) - x(0));
    const barW = Math.max(2, slot * 0.7);
    layers.forEach((l, i) => {
      let acc = 0;
      const x0 = x(i) + (slot - barW) / 2;
      for (const c of comps) {
        const v = (l[field][c] || 0) * scale;
        if (!(v > 0)) continue;
        const top = y(acc + v), bottom = y(acc);
        root.append(Plot.svg("rect", { class: "bar", x: x0.toFixed(1), y: top.toFixed(1), width: barW.toFixed(1),
          height: Math.max(0.5, bottom - top).toFixed(1), fill: COLORS[c] || "#999", "data-layer": l.name,
          "data-component": c, "data-value": v }));
        acc += v;
      }
      if (layers.length <= 24) {
        root.append(Plot.svg("text", { x: (x(i) + slot / 2).toFixed(1), y: H - 26, "text-anchor": "middle",
          class: "barlabel" }, l.name));
      }
    });
    return comps;
  }

  function renderCost(t) {
    const status = document.getElementById("cost-status");
    const detail = (t.details || []).find((d) => d && d.cost);
    if (!detail) {
      status.textContent = t.state === "COMPLETED" ? "this trial reported no cost breakdown" : "available when the trial completes";
      return;
    }
    const c = detail.cost;
    const totals = [
      ["energy per inference", fmt(c.energy_per_inference_nj) + " nJ"],
      ["latency", fmt(c.latency_per_inference_us) + " µs"],
      ["throughput", fmt(c.inferences_per_s) + " inferences/s"],
      ["area", fmt(c.area_mm2) + " mm²"], ["TOPS/W", fmt(c.tops_per_w)], ["TOPS/mm²", fmt(c.tops_per_mm2)],
      ["technology", c.technology], ["arrays", `${c.arrays} in ${c.cores} cores, ${c.tiles} tile${c.tiles === 1 ? "" : "s"}`],
      ["activity", c.activity_source],
    ];
    document.getElementById("cost-totals").replaceChildren(...totals.map(([k, v]) =>
      el("div", {}, el("span", {}, k), v)));
    status.textContent = (c.notes || []).join(" · ");
    const energyComps = stacked(document.getElementById("energy-plot"), c.layers, "energy_pj", 1e-3, "nJ");
    const areaComps = stacked(document.getElementById("area-plot"), c.layers, "area_um2", 1e-6, "mm²");
    const comps = [...new Set([...energyComps, ...areaComps])];
    document.getElementById("cost-legend").replaceChildren(...comps.map((k) =>
      el("span", { class: "key", "data-component": k }, el("i", { style: `background:${COLORS[k] || "#999"}` }), k)));
    const head = ["layer", "arrays", "MVMs / example", "in / ADC bits", "activity", "conversions",
      "latency µs", "energy nJ", "area mm²"];
    document.querySelector("#cost-table thead").replaceChildren(el("tr", {}, ...head.map((h) => el("th", {}, h))));
    const sum = (o) => Object.values(o).reduce((s, v) => s + v, 0);
    document.querySelector("#cost-table tbody").replaceChildren(...c.layers.map((l) => el("tr", {},
      el("td", {}, l.name), el("td", { class: "num" }, l.arrays), el("td", { class: "num" }, fmt(l.vectors)),
      el("td", {}, l.analog ? `${l.input_bits} / ${l.adc_bits}` : "digital"),
      el("td", { class: "num" }, l.analog ? fmt(l.activity) : ""), el("td", { class: "num" }, fmt(l.conversions)),
      el("td", { class: "num" }, fmt(l.latency_ns / 1e3)), el("td", { class: "num" }, fmt(sum(l.energy_pj) / 1e3)),
      el("td", { class: "num" }, fmt(sum(l.area_um2) / 1e6)))));
    const tc = detail.training_cost;
    document.getElementById("training-cost").replaceChildren(...(tc ? [
      el("div", {}, el("span", {}, "in-situ training"), `${fmt(tc.train_energy_mj)} mJ over ${tc.epochs.length} epochs`),
      el("div", {}, el("span", {}, "update pulses"), fmt(tc.epochs.reduce((s, e) => s + e.device_pulses, 0))),
      el("div", {}, el("span", {}, "update time"), `${fmt(tc.update_time_s)} s`),
    ] : []));
  }

  function renderEpochs(t) {
    const root = document.getElementById("epoch-plot");
    Plot.clear(root);
    const pts = (t.measurements || []).filter((m) => typeof m.metrics.accuracy === "number");
    if (!pts.length) return;
    const xs = pts.map((m) => m.epoch), ys = pts.map((m) => m.metrics.accuracy);
    const { x, y } = Plot.frame(root, [0, ...xs], ys, { width: 480, height: 300, xLabel: "epoch", yLabel: "validation accuracy" });
    const d = pts.map((m, i) => (i ? "L" : "M") + x(m.epoch).toFixed(1) + "," + y(m.metrics.accuracy).toFixed(1)).join("");
    root.append(Plot.svg("path", { class: "hvline", d }));
    for (const m of pts) {
      root.append(Plot.svg("circle", { class: "pt front", cx: x(m.epoch).toFixed(1), cy: y(m.metrics.accuracy).toFixed(1), r: 3 }));
    }
  }

  function showTip(ev) {
    const r = ev.target.closest("rect.bar");
    if (!r) { tooltip.style.display = "none"; return; }
    tooltip.textContent = `${r.dataset.layer}\n${r.dataset.component} = ${fmt(+r.dataset.value)}`;
    tooltip.style.left = ev.clientX + 14 + "px";
    tooltip.style.top = ev.clientY + 10 + "px";
    tooltip.style.display = "block";
  }
  for (const id of ["energy-plot", "area-plot"]) {
    const node = document.getElementById(id);
    node.addEventListener("mousemove", showTip);
    node.addEventListener("mouseleave", () => { tooltip.style.display = "none"; });
  }

  async function refresh() {
    let t;
    try {
      t = await api(`${base}/trials/${number}`);
    } catch (e) {
      document.getElementById("error").textContent = e.status === 401 ? "enter a token (top right)" : e.message;
      return;
    }
    renderSummary(t);
    renderMetrics(t);
    renderCost(t);
    renderEpochs(t);
    document.body.dataset.rendered = t.state;
  }

  DSE.tokenBox();
  refresh().then(() => {
    DSE.follow(base + "/events", (name, data) => {
      if (name === "trial" && data && data.number === number) refresh();
    });
  });
})();
