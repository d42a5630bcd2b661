// Minimal SVG plotting: linear scales with round ticks, axes, scatter, lines and bars.
"use strict";

const Plot = (() => {
  const NS = "http://www.w3.org/2000/svg";

  function svg(tag, attrs, text) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function ticks(lo, hi, count) {
    if (!(hi > lo)) { const d = Math.abs(lo) * 0.1 || 1; lo -= d; hi += d; }
    const raw = (hi - lo) / count;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || 10 * mag;
    const start = Math.floor(lo / step) * step, end = Math.ceil(hi / step) * step;
    const out = [];
    for (let v = start; v <= end + step / 2; v += step) out.push(+v.toPrecision(12));
    return { lo: start, hi: end, values: out };
  }

  function scale(d0, d1, r0, r1) {
    const k = d1 === d0 ? 0 : (r1 - r0) / (d1 - d0);
    return (v) => r0 + (v - d0) * k;
  }

  // Frame with axes; returns {x, y} scales (data -> pixels).
  function frame(root, xs, ys, opts) {
    const W = opts.width, H = opts.height, m = { l: 62, r: 14, t: 10, b: 40 };
    const tx = opts.xTicks === false ? { lo: Math.min(...xs), hi: Math.max(...xs), values: [] }
      : ticks(Math.min(...xs), Math.max(...xs), 6);
    const ty = ticks(Math.min(...ys), Math.max(...ys), 5);
    const x = scale(tx.lo, tx.hi, m.l, W - m.r), y = scale(ty.lo, ty.hi, H - m.b, m.t);
    const axis = svg("g", { class: "axis" });
    axis.append(svg("line", { x1: m.l, y1: H - m.b, x2: W - m.r, y2: H - m.b }));
    axis.append(svg("line", { x1: m.l, y1: m.t, x2: m.l, y2: H - m.b }));
    if (opts.xTicks !== false) {
      for (const v of tx.values) {
        axis.append(svg("line", { x1: x(v), y1: H - m.b, x2: x(v), y2: H - m.b + 4 }));
        axis.append(svg("text", { x: x(v), y: H - m.b + 16, "text-anchor": "middle" }, DSE.fmt(v)));
      }
    }
    for (const v of ty.values) {
      axis.append(svg("line", { x1: m.l - 4, y1: y(v), x2: m.l, y2: y(v) }));
      axis.append(svg("text", { x: m.l - 7, y: y(v) + 4, "text-anchor": "end" }, DSE.fmt(v)));
    }
    axis.append(svg("text", { x: (m.l + W - m.r) / 2, y: H - 6, "text-anchor": "middle", class: "xlabel" }, opts.xLabel));
    axis.append(svg("text", { x: 14, y: (m.t + H - m.b) / 2, "text-anchor": "middle", class: "ylabel",
      transform: `rotate(-90 14 ${(m.t + H - m.b) / 2})` }, opts.yLabel));
    root.append(axis);
    return { x, y };
  }

  function clear(root) { while (root.firstChild) root.removeChild(root.firstChild); }

  return { svg, frame, clear };
})();
