// respq's dashboard: reads the JSON API (docs/http.md) every REFRESH_MS, one page of queues at a time.
// Every value from the server is set with textContent, never parsed as HTML.
"use strict";

const REFRESH_MS = 2000;
const PAGE = 50;
const state = { sort: "name", order: "asc", match: "", type: "", offset: 0, total: 0, timer: null, gen: 0 };

// A refresh started later (a click, a new filter) makes an earlier one stop before it draws stale data.
class Stale extends Error {}
function current(gen) { if (gen !== state.gen) throw new Stale(); }

function $(id) { return document.getElementById(id); }

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

// Keys and values are a string (UTF-8) or {"base64": "..."}.
function show(value) {
  if (value && typeof value === "object" && "base64" in value) return "base64:" + value.base64;
  return String(value);
}

// The key's bytes percent-encoded for a path.
function keyPath(value) {
  if (value && typeof value === "object" && "base64" in value) {
    const bytes = atob(value.base64);
    let out = "";
    for (let i = 0; i < bytes.length; i++) out += "%" + bytes.charCodeAt(i).toString(16).padStart(2, "0");
    return out;
  }
  return encodeURIComponent(value);
}

function age(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 60) return seconds.toFixed(1) + " s";
  if (seconds < 3600) return (seconds / 60).toFixed(1) + " min";
  if (seconds < 86400) return (seconds / 3600).toFixed(1) + " h";
  return (seconds / 86400).toFixed(1) + " d";
}

function rate(value) { return value === null || value === undefined ? "–" : value.toFixed(1); }

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : String(n)) + " " + units[i];
}

async function api(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  const body = await response.json();
  if (!response.ok) throw new Error(body.detail || response.statusText);
  return body;
}

function tiles(target, items) {
  const nodes = items.map(([label, value, id]) => {
    const tile = el("div", null, "tile");
    tile.append(el("div", label, "label"));
    const v = el("div", value, "value");
    if (id) v.dataset.testid = id;
    tile.append(v);
    return tile;
  });
  target.replaceChildren(...nodes);
}

function setStatus(text, bad) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("bad", !!bad);
}

async function renderOverview(gen) {
  const o = await api("/api/overview");
  current(gen);
  const q = o.queues || { list: {}, stream: {} };
  const oldest = Math.max(q.list.oldest_seconds || 0, q.stream.oldest_seconds || 0);
  const groups = o.groups || {};
  tiles($("tiles"), [
    ["Lists", q.list.count ?? "–", "tile-lists"],
    ["Streams", q.stream.count ?? "–", "tile-streams"],
    ["Messages", (q.list.messages || 0) + (q.stream.messages || 0), "tile-messages"],
    ["Oldest message", age(oldest), "tile-oldest"],
    ["Pending", groups.pending ?? "–", "tile-pending"],
    ["Lag", groups.lag ?? "–", "tile-lag"],
    ["Clients", o.connected_clients, "tile-clients"],
    ["Blocked", o.blocked_clients, "tile-blocked"],
  ]);
  setStatus(o.loading ? "loading…" : o.accepting_writes ? "respq " + o.version : "writes refused (disk error)",
    o.loading || !o.accepting_writes);
}

async function renderTable(gen) {
  const params = new URLSearchParams({ sort: state.sort, order: state.order, offset: state.offset, limit: PAGE });
  if (state.match) params.set("match", state.match);
  if (state.type) params.set("type", state.type);
  const page = await api("/api/queues?" + params);
  current(gen);
  state.total = page.total;
  const rows = page.queues.map((q) => {
    const tr = el("tr");
    tr.dataset.key = show(q.key);
    const link = el("a", show(q.key));
    link.href = "#/queue/" + q.db + "/" + keyPath(q.key);
    const name = el("td", null, "key");
    name.append(link);
    tr.append(name, el("td", q.db), el("td", q.type));
    const cells = [
      ["depth", q.depth], ["oldest", age(q.oldest_seconds)], ["pending", q.type === "stream" ? q.pending : "–"],
      ["lag", q.type === "stream" ? q.lag : "–"], ["lag-age", q.type === "stream" ? age(q.lag_seconds) : "–"],
      ["waiting", q.waiting],
      ["in", rate(q.rates && q.rates.added_per_second)], ["depth-rate", rate(q.rates && q.rates.depth_per_second)],
      ["bytes", bytes(q.bytes)],
    ];
    for (const [cls, value] of cells) tr.append(el("td", value, "num " + cls));
    if ((q.oldest_seconds || 0) > 300) tr.classList.add("old");
    return tr;
  });
  $("queues").tBodies[0].replaceChildren(...rows);
  const first = page.total ? state.offset + 1 : 0;
  $("range").textContent = first + "–" + (state.offset + page.queues.length) + " of " + page.total;
  $("prev").disabled = state.offset === 0;
  $("next").disabled = state.offset + PAGE >= page.total;
  for (const th of document.querySelectorAll("#queues th[data-sort]")) {
    th.classList.remove("sorted-asc", "sorted-desc");
    if (th.dataset.sort === state.sort) th.classList.add("sorted-" + state.order);
  }
}

function sparkline(svg, values) {
  const points = values.filter((v) => v !== null && v !== undefined && isFinite(v));
  if (points.length < 2) { svg.replaceChildren(); return; }
  const max = Math.max(...points), min = Math.min(0, ...points), span = max - min || 1;
  const step = 300 / (points.length - 1);
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", points.map((v, i) => (i * step).toFixed(1) + "," + (58 - ((v - min) / span) * 56).toFixed(1)).join(" "));
  svg.replaceChildren(line);
}

function perSecond(samples, field) {
  // Samples run oldest first; seconds_ago shrinks.
  const out = [];
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1], b = samples[i];
    const dt = a.seconds_ago - b.seconds_ago;
    out.push(a[field] === null || b[field] === null || dt <= 0 ? null : (b[field] - a[field]) / dt);
  }
  return out;
}

async function renderQueue(gen, db, key) {
  const path = "/api/queues/" + db + "/" + key;
  const q = await api(path);
  current(gen);
  $("queue-title").textContent = show(q.key) + " (db " + q.db + ", " + q.type + ")";
  tiles($("queue-tiles"), [
    ["Depth", q.depth, "q-depth"],
    ["Oldest message", age(q.oldest_seconds), "q-oldest"],
    ["Pending", q.pending, "q-pending"],
    ["Lag", q.lag, "q-lag"],
    ["Waiting clients", q.waiting, "q-waiting"],
    ["Added / s", rate(q.rates.added_per_second), "q-added"],
    ["Disk", bytes(q.bytes), "q-bytes"],
  ]);
  sparkline($("spark-depth"), q.samples.map((s) => s.depth));
  sparkline($("spark-added"), perSecond(q.samples, "pushed"));
  sparkline($("spark-delivered"), perSecond(q.samples, "delivered"));
  const rows = q.groups.map((g) => {
    const tr = el("tr");
    tr.dataset.group = show(g.name);
    tr.append(el("td", show(g.name)), el("td", g.pending, "num pending"), el("td", g.lag ?? "?", "num lag"),
      el("td", age(g.lag_seconds), "num"), el("td", age(g.oldest_pending_seconds), "num"),
      el("td", g.delivered ?? "?", "num"),
      el("td", g.consumers.map((c) => show(c.name) + " (" + c.pending + ", " + age(c.idle_seconds) + ")").join(", ")));
    return tr;
  });
  $("groups").tBodies[0].replaceChildren(...rows);
  const peek = await api(path + "/peek?count=10");
  current(gen);
  const items = peek.type === "list"
    ? peek.messages.map(show)
    : peek.entries.map((e) => e.id + "  " + e.fields.map(([f, v]) => show(f) + "=" + show(v)).join(" "));
  $("peek").replaceChildren(...items.map((text) => el("li", text)));
}

function route() {
  const match = location.hash.match(/^#\/queue\/(\d+)\/(.+)$/);
  return match ? { db: match[1], key: match[2] } : null;
}

async function refresh() {
  clearTimeout(state.timer);
  const gen = ++state.gen;
  try {
    await renderOverview(gen);
    const queue = route();
    $("list-view").hidden = !!queue;
    $("queue-view").hidden = !queue;
    if (queue) await renderQueue(gen, queue.db, queue.key);
    else await renderTable(gen);
    document.body.dataset.refreshed = String(gen);
  } catch (error) {
    if (error instanceof Stale) return;
    setStatus(String(error.message || error), true);
  }
  if (gen === state.gen) state.timer = setTimeout(refresh, REFRESH_MS);
}

function init() {
  for (const th of document.querySelectorAll("#queues th[data-sort]")) {
    th.addEventListener("click", () => {
      const sort = th.dataset.sort;
      if (state.sort === sort) state.order = state.order === "asc" ? "desc" : "asc";
      else { state.sort = sort; state.order = sort === "name" ? "asc" : "desc"; }
      state.offset = 0;
      refresh();
    });
  }
  let typing = null;
  $("match").addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => { state.match = $("match").value.trim(); state.offset = 0; refresh(); }, 200);
  });
  $("type").addEventListener("change", () => { state.type = $("type").value; state.offset = 0; refresh(); });
  $("filters").addEventListener("submit", (event) => event.preventDefault());
  $("prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE); refresh(); });
  $("next").addEventListener("click", () => { state.offset += PAGE; refresh(); });
  window.addEventListener("hashchange", refresh);
  refresh();
}

document.addEventListener("DOMContentLoaded", init);
