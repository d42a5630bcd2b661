// Shared helpers of the dashboard pages: the API client (bearer token from the URL fragment
// "#token=..." or the token box, kept in this tab's sessionStorage) and the SSE reader.
"use strict";

const DSE = (() => {
  const TOKEN_KEY = "dse-token";

  function token() {
    const m = /(?:^|[#&])token=([^&]+)/.exec(location.hash);
    if (m) {
      sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
      history.replaceState(null, "", location.pathname + location.search);
    }
    return sessionStorage.getItem(TOKEN_KEY) || "";
  }

  function headers() {
    const t = token();
    return t ? { Authorization: "Bearer " + t } : {};
  }

  async function api(path) {
    const res = await fetch(path, { headers: headers() });
    if (!res.ok) {
      let detail = res.statusText;
      try { detail = (await res.json()).detail || detail; } catch (e) { /* not JSON */ }
      const err = new Error(`${res.status}: ${detail}`);
      err.status = res.status;
      throw err;
    }
    return res.json();
  }

  // Server-sent events over fetch (EventSource cannot send an Authorization header).
  // Calls onEvent(name, data) per event; reconnects with Last-Event-ID until stopped or "end".
  function follow(path, onEvent) {
    let stopped = false, lastId = null, controller = null;
    async function run() {
      while (!stopped) {
        controller = new AbortController();
        try {
          const h = headers();
          if (lastId !== null) h["Last-Event-ID"] = lastId;
          const res = await fetch(path, { headers: h, signal: controller.signal });
          if (!res.ok || !res.body) throw new Error("events: " + res.status);
          const reader = res.body.getReader();
          const decoder = new TextDecoder();
          let buf = "";
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            buf += decoder.decode(value, { stream: true });
            let cut;
            while ((cut = buf.indexOf("\n\n")) >= 0) {
              const block = buf.slice(0, cut);
              buf = buf.slice(cut + 2);
              let name = "message", data = [], id = null;
              for (const line of block.split("\n")) {
                if (line.startsWith("event: ")) name = line.slice(7);
                else if (line.startsWith("data: ")) data.push(line.slice(6));
                else if (line.startsWith("id: ")) id = line.slice(4);
              }
              if (id !== null) lastId = id;
              if (!data.length) continue;
              onEvent(name, JSON.parse(data.join("\n")));
              if (name === "end") { stopped = true; return; }
            }
          }
        } catch (e) {
          if (stopped) return;
        }
        await new Promise((r) => setTimeout(r, 2000));
      }
    }
    run();
    return () => { stopped = true; if (controller) controller.abort(); };
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
    return node;
  }

  function fmt(v) {
    if (v === null || v === undefined) return "";
    if (typeof v === "number") {
      if (Number.isInteger(v)) return String(v);
      const a = Math.abs(v);
      return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(3) : v.toPrecision(4).replace(/\.?0+$/, "");
    }
    if (typeof v === "object") return JSON.stringify(v);
    return String(v);
  }

  function duration(s) {
    if (s === null || s === undefined) return "";
    if (s < 60) return s.toFixed(1) + " s";
    const m = Math.floor(s / 60), r = Math.round(s % 60);
    return m < 60 ? `${m} min ${r} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
  }

  function progress(p) {
    const bar = el("span", { class: "progress", title: p == null ? "" : Math.round(p * 100) + "%" }, el("span"));
    bar.firstChild.style.width = (p == null ? 0 : Math.round(p * 100)) + "%";
    return bar;
  }

  function tokenBox() {
    const box = document.getElementById("token");
    if (!box) return;
    box.value = token();
    box.addEventListener("change", () => { sessionStorage.setItem(TOKEN_KEY, box.value.trim()); location.reload(); });
  }

  return { api, follow, el, fmt, duration, progress, token, tokenBox };
})();
