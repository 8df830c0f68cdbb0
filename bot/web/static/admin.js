// Admin dashboard: reads /api/llm/status and /api/llm/analytics with the admin bearer token and draws
// provider cards and inline SVG charts (no CDN, no library). The token is kept in sessionStorage only;
// it may also be passed once as #token=... (a fragment never reaches the server or its logs).
"use strict";

const COLORS = ["#3366cc", "#dc3912", "#ff9900", "#109618", "#990099", "#0099c6"];
const RANGES = { "1h": [3600, "minute"], "24h": [86400, "hour"], "7d": [7 * 86400, "day"] };
const SVG_NS = "http://www.w3.org/2000/svg";
const LOGIN_TEXT = {
  refused: "That token was refused. Enter the admin token (ADMIN_API_TOKEN).",
  disabled: "The admin API is disabled on this server.",
};

function when(epoch) {
  if (epoch === null || epoch === undefined) return "–";
  return new Date(epoch * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

function pct(value) { return value === null || value === undefined ? "–" : (value * 100).toFixed(1) + " %"; }
function ms(value) { return value === null || value === undefined ? "–" : Math.round(value) + " ms"; }

function card(p) {
  const hour = p.last_hour;
  const facts = [
    ["Model", p.model], ["Since", when(p.since)], ["Until", when(p.until)],
    ["Next probe", when(p.next_probe_at)], ["Last success", when(p.last_success_at)],
    ["Last failure", when(p.last_failure_at)], ["Failures in a row", p.consecutive_failures],
    ["Last hour", hour.requests + " calls, " + pct(hour.success_rate) + " ok"],
    ["Latency p50 / p95", ms(hour.latency_ms.p50) + " / " + ms(hour.latency_ms.p95)],
  ];
  const dl = el("dl");
  for (const [label, value] of facts) dl.append(el("dt", {}, label), el("dd", {}, value));
  const buttons = el("div", { class: "actions" },
    button("Test", () => act("/api/llm/test", { provider: p.provider })),
    button("Reset", () => act("/api/llm/reset-failures", { provider: p.provider })),
    p.state === "disabled"
      ? button("Enable", () => act("/api/llm/providers/" + encodeURIComponent(p.provider) + "/enable", {}))
      : button("Disable", () => act("/api/llm/providers/" + encodeURIComponent(p.provider) + "/disable", {})));
  return el("article", { class: "card card-" + p.state, "data-provider": p.provider },
    el("h2", {}, p.provider, el("span", { class: "state state-" + p.state }, p.state.replace("_", " "))),
    el("div", { class: "reason" }, p.reason || "No problem reported."),
    p.advice ? el("div", { class: "advice" }, p.advice) : "",
    dl, buttons);
}

function button(label, onClick) {
  const b = el("button", { type: "button" }, label);
  b.addEventListener("click", onClick);
  return b;
}

async function act(path, body) {
  $("message").textContent = "Working…";
  try {
    const result = await api(path, { method: "POST", body: JSON.stringify(body) });
    const probes = result.results
      ? result.results.map((r) => r.provider + ": " + r.outcome + (r.error_kind ? " (" + r.error_kind + ")" : "")).join(", ")
      : "done";
    $("message").textContent = probes;
  } catch (e) {
    $("message").textContent = "Failed: " + e.message;
  }
  refresh();
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}

function lineChart(container, series, buckets, maxValue, format) {
  const W = 520, H = 200, L = 44, B = 22, T = 8, R = 8;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img" });
  const x = (i) => L + (buckets.length < 2 ? 0 : (i * (W - L - R)) / (buckets.length - 1));
  const y = (v) => H - B - (maxValue ? (v / maxValue) * (H - B - T) : 0);
  for (const f of [0, 0.5, 1]) {
    root.append(svg("line", { x1: L, x2: W - R, y1: y(f * maxValue), y2: y(f * maxValue), stroke: "#dde" }));
    const label = svg("text", { x: 2, y: y(f * maxValue) + 3 });
    label.textContent = format(f * maxValue);
    root.append(label);
  }
  const first = svg("text", { x: L, y: H - 6 });
  first.textContent = buckets.length ? when(buckets[0]).slice(5, 16) : "no data";
  root.append(first);
  series.forEach((s, index) => {
    const color = COLORS[index % COLORS.length];
    const points = s.values.map((v, i) => (v === null ? null : [x(i), y(v)])).filter(Boolean);
    if (!points.length) return;
    root.append(svg("polyline", {
      points: points.map((p) => p.join(",")).join(" "), fill: "none", stroke: color, "stroke-width": 2,
      "data-provider": s.name,
    }));
    // Dots, so a series with a single bucket still shows.
    for (const [px, py] of points) root.append(svg("circle", { cx: px, cy: py, r: 3, fill: color }));
  });
  container.replaceChildren(root, legend(series.map((s) => s.name)));
}

function barChart(container, entries, format) {
  const W = 520, rowH = 26, H = Math.max(entries.length, 1) * rowH + 6, L = 80;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img" });
  const max = Math.max(...entries.map((e) => e.value || 0), 0);
  entries.forEach((e, i) => {
    const width = max ? ((e.value || 0) / max) * (W - L - 90) : 0;
    const name = svg("text", { x: 2, y: i * rowH + 18 });
    name.textContent = e.name;
    const bar = svg("rect", {
      x: L, y: i * rowH + 5, width: Math.max(width, 1), height: rowH - 8,
      fill: COLORS[i % COLORS.length], "data-provider": e.name, "data-value": e.value ?? "",
    });
    const value = svg("text", { x: L + width + 6, y: i * rowH + 18, class: "bar-value" });
    value.textContent = format(e.value);
    root.append(name, bar, value);
  });
  container.replaceChildren(root);
}

function legend(names) {
  const box = el("div", { class: "legend" });
  names.forEach((n, i) => {
    const item = el("span", {}, "■ " + n);
    item.style.color = COLORS[i % COLORS.length]; // CSSOM, allowed by the page's CSP (style attributes are not)
    box.append(item);
  });
  return box;
}

function drawCharts(analytics) {
  const names = analytics.providers.map((p) => p.provider);
  const width = analytics.bucket_seconds;
  const count = Math.ceil((analytics.until - analytics.since) / width);
  const buckets = Array.from({ length: count }, (_, i) => analytics.since + i * width);
  const index = new Map(buckets.map((b, i) => [Math.round(b), i]));
  const pick = (field) => names.map((name) => {
    const values = new Array(count).fill(null);
    for (const point of analytics.series) {
      if (point.provider !== name) continue;
      const i = index.get(Math.round(point.start));
      if (i !== undefined) values[i] = field(point);
    }
    return { name, values };
  });
  lineChart($("chart-success"), pick((p) => p.success_rate), buckets, 1, (v) => Math.round(v * 100) + "%");
  const latency = pick((p) => p.latency_ms.p95);
  const maxLatency = Math.max(1, ...latency.flatMap((s) => s.values.filter((v) => v !== null)));
  lineChart($("chart-latency"), latency, buckets, maxLatency, (v) => Math.round(v));
  barChart($("chart-load"), analytics.providers.map((p) => ({ name: p.provider, value: p.load_share })), pct);
  barChart($("chart-cost"), analytics.providers.map((p) => ({ name: p.provider, value: p.cost_usd })),
    (v) => "$" + (v || 0).toFixed(4));
  const t = analytics.totals;
  const probes = analytics.selftest_by_day.reduce((sum, d) => sum + d.tokens, 0);
  $("totals").replaceChildren(el("p", {},
    `${t.requests} requests, ${t.answered} answered (${pct(t.fallback_rate)} by a fallback), ` +
    `${t.unanswered} unanswered; ${t.attempts} provider calls, $${t.cost_usd.toFixed(4)}; ` +
    `self-test probes used ${probes} tokens in this range.`));
}

async function refresh() {
  if (!token()) { showLogin(); return; }
  const [span, bucket] = RANGES[$("range").value];
  const until = Math.floor(Date.now() / 1000) + 1;
  try {
    const [status, analytics] = await Promise.all([
      api("/api/llm/status"),
      api(`/api/llm/analytics?since=${until - span}&until=${until}&bucket=${bucket}`),
    ]);
    $("login").hidden = true;
    $("content").hidden = false;
    $("cards").replaceChildren(...status.providers.map(card));
    $("summary").textContent = status.next_provider
      ? `Next request goes to ${status.next_provider} · ${status.usable_providers} of ${status.providers.length} usable`
      : "NO PROVIDER IS USABLE: customers get the fallback reply";
    drawCharts(analytics);
    document.body.dataset.loaded = "true";
  } catch (e) {
    if (e.message !== "unauthorized" && e.message !== "forbidden") $("message").textContent = "Failed: " + e.message;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  takeTokenFromFragment();
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
    $("token").value = "";
    refresh();
  });
  $("refresh").addEventListener("click", refresh);
  $("range").addEventListener("change", refresh);
  $("test-all").addEventListener("click", () => act("/api/llm/test", {}));
  $("reset-all").addEventListener("click", () => act("/api/llm/reset-failures", {}));
  $("forget-token").addEventListener("click", () => { sessionStorage.removeItem(TOKEN_KEY); showLogin(); });
  refresh();
  setInterval(refresh, 30000);
});
