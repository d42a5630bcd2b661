// Study list: state, progress and trial counts, refreshed every few seconds.
"use strict";

(() => {
  const { api, el, duration, progress } = DSE;
  const body = document.querySelector("#studies tbody");
  const status = document.getElementById("status");
  const filter = document.getElementById("state-filter");

  async function refresh() {
    const q = filter.value ? "&state=" + encodeURIComponent(filter.value) : "";
    try {
      const page = await api("/v1/studies?limit=200" + q);
      body.replaceChildren(...page.items.map((s) => {
        const done = s.trials.total - (s.trials.by_state.RUNNING || 0) - (s.trials.by_state.PENDING || 0);
        return el("tr", { "data-study": s.id },
          el("td", {}, el("a", { href: "/studies/" + s.id }, s.name)),
          el("td", { class: "muted" }, s.id),
          el("td", {}, el("span", { class: "state " + s.state }, s.state)),
          el("td", {}, progress(s.progress), " ", s.progress == null ? "" : Math.round(s.progress * 100) + "%"),
          el("td", { class: "num" }, s.trials.budget ? `${done} / ${s.trials.budget}` : String(done)),
          el("td", { class: "muted" }, Object.entries(s.labels).map(([k, v]) => v ? `${k}=${v}` : k).join(", ")),
          el("td", { class: "muted" }, new Date(s.created_at).toLocaleString()),
          el("td", { class: "num" }, duration(s.elapsed_s)));
      }));
      status.textContent = `${page.total} studies · updated ${new Date().toLocaleTimeString()}`;
      status.className = "muted";
    } catch (e) {
      status.textContent = e.status === 401 ? "enter a token (top right) to see the studies" : String(e.message);
      status.className = "error";
    }
  }

  DSE.tokenBox();
  filter.addEventListener("change", refresh);
  refresh();
  setInterval(refresh, 3000);
})();
