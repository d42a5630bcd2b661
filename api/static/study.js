// Study page: summary, Pareto scatter (two chosen metrics, front highlighted, hover shows the
// trial's parameters), hypervolume curve and a sortable trials table, refreshed on the study's
// server-sent events.
"use strict";

(() => {
  const { api, el, fmt, duration, progress } = DSE;
  const studyId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop());
  const base = "/v1/studies/" + encodeURIComponent(studyId);
  const tooltip = document.getElementById("tooltip");
  const state = { study: null, sort: "number", order: "asc", offset: 0, limit: 50, front: new Set(), params: new Map() };

  // -- summary -------------------------------------------------------------------------------
  function renderSummary(s) {
    document.title = s.name + " · analog-dse";
    document.getElementById("name").textContent = s.name;
    const badge = document.getElementById("state");
    badge.textContent = s.state;
    badge.className = "state " + s.state;
    const t = s.trials, by = t.by_state;
    const done = t.total - (by.RUNNING || 0) - (by.PENDING || 0);
    const items = [
      ["id", s.id],
      ["progress", [progress(s.progress), " ", t.budget ? `${done} / ${t.budget} trials` : `${done} trials`]],
      ["running", by.RUNNING || 0], ["completed", by.COMPLETED || 0], ["failed", by.FAILED || 0],
      ["pruned", by.PRUNED || 0], ["cancelled", by.CANCELLED || 0],
      ["elapsed", duration(s.elapsed_s)],
      ["objectives", s.objectives.map((o) => `${o.metric} (${o.goal})`).join(", ")],
      ...s.best.map((b) => [`best ${b.metric}`, `${fmt(b.value)} (trial ${b.trial})`]),
    ];
    document.getElementById("summary").replaceChildren(...items.map(([k, v]) =>
      el("div", {}, el("span", {}, k), ...(Array.isArray(v) ? v : [String(v)]))));
    document.getElementById("error").textContent = s.error || "";
  }

  // -- Pareto scatter -------------------------------------------------------------------------
  const xSel = document.getElementById("x-metric"), ySel = document.getElementById("y-metric");
  const xGoal = document.getElementById("x-goal"), yGoal = document.getElementById("y-goal");

  function goalOf(metric) {
    const o = state.study.objectives.find((o) => o.metric === metric);
    return o ? (o.goal === "maximize" ? "max" : "min") : (metric === "accuracy" ? "max" : "min");
  }

  function fillMetricSelects() {
    const metrics = state.study.metrics;
    const have = [...xSel.options].map((o) => o.value).join(",");
    if (have === metrics.join(",")) return;
    const keepX = xSel.value, keepY = ySel.value;
    for (const sel of [xSel, ySel]) sel.replaceChildren(...metrics.map((m) => el("option", { value: m }, m)));
    const objs = state.study.objectives.map((o) => o.metric).filter((m) => metrics.includes(m));
    const others = metrics.filter((m) => !objs.includes(m));
    const defaults = [...objs, ...others];
    xSel.value = metrics.includes(keepX) ? keepX : defaults[0] || "";
    ySel.value = metrics.includes(keepY) ? keepY : defaults.find((m) => m !== xSel.value) || "";
    xGoal.value = goalOf(xSel.value);
    yGoal.value = goalOf(ySel.value);
  }

  async function renderPareto() {
    const root = document.getElementById("pareto-plot");
    const status = document.getElementById("pareto-status");
    if (!xSel.value || !ySel.value || xSel.value === ySel.value) {
      Plot.clear(root);
      status.textContent = "choose two different metrics";
      return;
    }
    const q = `${xSel.value}:${xGoal.value},${ySel.value}:${yGoal.value}`;
    let res;
    try {
      res = await api(base + "/pareto?objectives=" + encodeURIComponent(q));
    } catch (e) {
      Plot.clear(root);
      status.textContent = e.message;
      return;
    }
    state.front = new Set(res.front.map((t) => t.number));
    for (const t of res.front) state.params.set(t.number, t.params);
    const P = res.points;
    Plot.clear(root);
    status.textContent = `${P.trial.length} trials · ${res.front.length} on the front`;
    if (!P.trial.length) return;
    const xs = P.values.map((v) => v[0]), ys = P.values.map((v) => v[1]);
    const { x, y } = Plot.frame(root, xs, ys, { width: 640, height: 400, xLabel: `${xSel.value} (${xGoal.value})`,
      yLabel: `${ySel.value} (${yGoal.value})` });
    const front = P.trial.map((n, i) => i).filter((i) => P.rank[i] === 0).sort((a, b) => xs[a] - xs[b]);
    if (front.length > 1) {
      const d = front.map((i, k) => (k ? "L" : "M") + x(xs[i]).toFixed(1) + "," + y(ys[i]).toFixed(1)).join("");
      root.append(Plot.svg("path", { class: "frontline", d }));
    }
    const order = P.trial.map((n, i) => i).sort((a, b) => (P.rank[a] === 0) - (P.rank[b] === 0));
    for (const i of order) {
      const cls = P.rank[i] === 0 ? "pt front" : P.rank[i] < 0 ? "pt infeasible" : "pt";
      root.append(Plot.svg("circle", { class: cls, cx: x(xs[i]).toFixed(1), cy: y(ys[i]).toFixed(1),
        r: P.rank[i] === 0 ? 5 : 3.5, "data-trial": P.trial[i], "data-rank": P.rank[i],
        "data-x": xs[i], "data-y": ys[i] }));
    }
  }

  async function showTip(ev) {
    const c = ev.target.closest("circle.pt");
    if (!c) { tooltip.style.display = "none"; return; }
    const n = +c.dataset.trial;
    let params = state.params.get(n);
    const place = () => {
      tooltip.textContent = [`trial ${n}` + (c.dataset.rank === "0" ? " (front)" : c.dataset.rank < 0 ? " (infeasible)" : ` (rank ${c.dataset.rank})`),
        `${xSel.value} = ${fmt(+c.dataset.x)}`, `${ySel.value} = ${fmt(+c.dataset.y)}`,
        ...Object.entries(params || {}).map(([k, v]) => `${k} = ${fmt(v)}`)].join("\n");
      tooltip.style.left = ev.clientX + 14 + "px";
      tooltip.style.top = ev.clientY + 10 + "px";
      tooltip.style.display = "block";
    };
    place();
    if (!params) {
      try {
        const t = await api(`${base}/trials/${n}`);
        state.params.set(n, t.params);
        params = t.params;
        place();
      } catch (e) { /* keep the values shown */ }
    }
  }

  const plot = document.getElementById("pareto-plot");
  plot.addEventListener("mousemove", showTip);
  plot.addEventListener("mouseleave", () => { tooltip.style.display = "none"; });
  for (const sel of [xSel, ySel]) sel.addEventListener("change", () => {
    (sel === xSel ? xGoal : yGoal).value = goalOf(sel.value);
    renderPareto();
  });
  for (const sel of [xGoal, yGoal]) sel.addEventListener("change", renderPareto);

  // -- hypervolume ----------------------------------------------------------------------------
  async function renderHypervolume() {
    const root = document.getElementById("hv-plot");
    const status = document.getElementById("hv-status");
    let res;
    try {
      res = await api(base + "/hypervolume");
    } catch (e) {
      Plot.clear(root);
      status.textContent = e.message;
      return;
    }
    Plot.clear(root);
    const h = res.history;
    status.textContent = h.length ? `${res.objectives.map((o) => o.metric).join(" × ")} · latest ${fmt(h[h.length - 1].hypervolume)}` : "no finished trials yet";
    if (!h.length) return;
    const xs = h.map((p) => p.trials), ys = h.map((p) => p.hypervolume);
    const { x, y } = Plot.frame(root, [0, ...xs], [0, ...ys], { width: 480, height: 300, xLabel: "finished trials", yLabel: "hypervolume" });
    const d = h.map((p, i) => (i ? "L" : "M") + x(p.trials).toFixed(1) + "," + y(p.hypervolume).toFixed(1)).join("");
    root.append(Plot.svg("path", { class: "hvline", d }));
  }

  // -- trials table ---------------------------------------------------------------------------
  const stateSel = document.getElementById("trial-state");

  async function renderTrials() {
    const s = stateSel.value ? "&state=" + stateSel.value : "";
    const page = await api(`${base}/trials?sort=${encodeURIComponent(state.sort)}&order=${state.order}` +
      `&limit=${state.limit}&offset=${state.offset}${s}`);
    const paramNames = [...new Set(page.items.flatMap((t) => Object.keys(t.params)))];
    const metricNames = state.study.metrics;
    const head = [["number", "#"], ["state", null], ...paramNames.map((p) => [null, p]),
      ...metricNames.map((m) => [m, m]), ["duration_s", "duration"]];
    const thead = document.querySelector("#trials-table thead");
    thead.replaceChildren(el("tr", {}, ...head.map(([key, label]) => {
      const th = el("th", { "data-sort": key || "" }, label || key);
      if (key && key !== "state") {
        th.classList.add("sortable");
        if (state.sort === key) th.classList.add(state.order === "asc" ? "sorted-asc" : "sorted-desc");
        th.addEventListener("click", () => {
          state.order = state.sort === key && state.order === "asc" ? "desc" : "asc";
          state.sort = key;
          state.offset = 0;
          renderTrials();
        });
      }
      return th;
    })));
    document.querySelector("#trials-table tbody").replaceChildren(...page.items.map((t) => {
      state.params.set(t.number, t.params);
      return el("tr", { class: state.front.has(t.number) ? "front" : "", "data-trial": t.number },
        el("td", { class: "num" }, el("a", { href: `/studies/${encodeURIComponent(studyId)}/trials/${t.number}` }, t.number)),
        el("td", {}, el("span", { class: "state " + t.state, title: t.error || "" }, t.state)),
        ...paramNames.map((p) => el("td", {}, fmt(t.params[p]))),
        ...metricNames.map((m) => el("td", { class: "num" }, fmt(t.metrics[m]))),
        el("td", { class: "num" }, duration(t.duration_s)));
    }));
    const last = Math.min(page.offset + page.limit, page.total);
    document.getElementById("page").textContent = page.total ? `${page.offset + 1}-${last} of ${page.total}` : "no trials";
    document.getElementById("prev").disabled = page.offset === 0;
    document.getElementById("next").disabled = page.next_offset === null;
  }

  document.getElementById("prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - state.limit); renderTrials(); });
  document.getElementById("next").addEventListener("click", () => { state.offset += state.limit; renderTrials(); });
  stateSel.addEventListener("change", () => { state.offset = 0; renderTrials(); });

  // -- refresh --------------------------------------------------------------------------------
  let pending = null;
  async function refresh() {
    pending = null;
    try {
      state.study = await api(base);
    } catch (e) {
      document.getElementById("error").textContent = e.status === 401 ? "enter a token (top right)" : e.message;
      return;
    }
    renderSummary(state.study);
    fillMetricSelects();
    await renderPareto();
    await Promise.all([renderHypervolume(), renderTrials()]);
    document.body.dataset.rendered = String(state.study.trials.total);
  }

  function schedule() { if (!pending) pending = setTimeout(refresh, 1000); }

  DSE.tokenBox();
  refresh().then(() => {
    DSE.follow(base + "/events", (name) => { if (name === "trial" || name === "study" || name === "end") schedule(); });
  });
})();
