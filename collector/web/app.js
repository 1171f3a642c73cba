// modemguard collector web page: plain JavaScript, no build step, no
// external assets. It reads the JSON API and renders the fleet (#/) or one
// gateway (#/gateway/ID). Text from reports is only ever set as
// textContent, never as HTML.
"use strict";

const state = { gateways: [], filter: "", verdict: "", sort: "gateway_id", dir: 1 };

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const k of kids.flat()) {
    if (k === undefined || k === null) continue;
    e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return e;
}

function when(ms) {
  if (!ms) return "never";
  const d = new Date(ms);
  const ago = (Date.now() - ms) / 1000;
  let rel;
  if (ago < 90) rel = Math.round(ago) + " s ago";
  else if (ago < 5400) rel = Math.round(ago / 60) + " min ago";
  else if (ago < 172800) rel = Math.round(ago / 3600) + " h ago";
  else rel = Math.round(ago / 86400) + " d ago";
  return d.toISOString().replace("T", " ").slice(0, 19) + "Z (" + rel + ")";
}

function badge(text, cls) { return el("span", { class: "badge " + (cls || text) }, text || "—"); }

function onlineText(g) {
  if (g.online === null || g.online === undefined) return ["unknown", "muted"];
  return g.online ? ["online", "online"] : ["offline", "offline"];
}

// Module fields shown in the fleet table: the first module of each gateway,
// and a count when there are more.
function mod(g, key) {
  const ms = g.modules || [];
  const vals = [...new Set(ms.map((m) => m[key] || ""))].filter((v) => v);
  return vals.join(", ");
}

function countBy(list, fn) {
  const m = new Map();
  for (const x of list) for (const k of fn(x)) m.set(k, (m.get(k) || 0) + 1);
  return [...m.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}

function card(title, rows) {
  return el("div", { class: "card" }, el("h3", {}, title),
    rows.length ? el("ul", {}, rows.map(([k, n]) => el("li", {}, el("span", {}, k || "unknown"), el("span", {}, n))))
      : el("p", { class: "empty" }, "none"));
}

async function getJSON(path) {
  const r = await fetch(path, { headers: { Accept: "application/json" } });
  if (!r.ok) throw new Error(path + ": " + r.status + " " + (await r.text()));
  return r.json();
}

const columns = [
  ["gateway_id", "Gateway", (g) => g.gateway_id],
  ["online", "Status", (g) => onlineText(g)[0] + (g.silent ? " silent" : "")],
  ["vendor", "Vendor", (g) => mod(g, "vendor")],
  ["model", "Model", (g) => mod(g, "model")],
  ["firmware", "Firmware", (g) => mod(g, "firmware")],
  ["origin", "Origin", (g) => mod(g, "origin_country")],
  ["imei", "IMEI", (g) => mod(g, "imei")],
  ["verdict", "Verdict", (g) => g.verdict],
  ["chain", "Chain", (g) => g.chain],
  ["last_seq", "Seq", (g) => g.last_seq],
  ["last_seen_ms", "Last report", (g) => g.last_seen_ms],
];

function matches(g) {
  if (state.verdict && g.verdict !== state.verdict) return false;
  if (!state.filter) return true;
  const hay = [g.gateway_id, g.verdict, g.chain, g.trust, onlineText(g)[0], g.silent ? "silent" : "",
    ...(g.modules || []).flatMap((m) => [m.vendor, m.vendor_name, m.manufacturer, m.model, m.firmware, m.imei, m.iccid, m.origin_country, (m.network || {}).operator, ...(m.lists || [])])]
    .join(" ").toLowerCase();
  return state.filter.toLowerCase().split(/\s+/).filter((w) => w).every((w) => hay.includes(w));
}

function renderTable(tbody, countEl) {
  const col = columns.find((c) => c[0] === state.sort) || columns[0];
  const rows = state.gateways.filter(matches).sort((a, b) => {
    const x = col[2](a), y = col[2](b);
    return (typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y))) * state.dir;
  });
  tbody.replaceChildren(...rows.map((g) => {
    const [on, oncls] = onlineText(g);
    return el("tr", { "data-gateway": g.gateway_id },
      el("td", {}, el("a", { href: "#/gateway/" + encodeURIComponent(g.gateway_id) }, g.gateway_id)),
      el("td", {}, badge(on, oncls), g.silent ? [" ", badge("silent")] : null),
      el("td", {}, mod(g, "vendor")), el("td", {}, mod(g, "model")), el("td", {}, mod(g, "firmware")),
      el("td", {}, mod(g, "origin_country")), el("td", { class: "num" }, mod(g, "imei")),
      el("td", {}, badge(g.verdict || "none", g.verdict)), el("td", {}, badge(g.chain, g.chain)),
      el("td", { class: "num" }, g.last_seq), el("td", {}, when(g.last_seen_ms)));
  }));
  if (!rows.length) tbody.append(el("tr", {}, el("td", { colspan: columns.length, class: "empty" }, "no gateway matches")));
  countEl.textContent = rows.length + " of " + state.gateways.length + " gateways";
}

async function renderFleet(app) {
  const [gws, rej] = await Promise.all([getJSON("api/v1/gateways"), getJSON("api/v1/rejections?limit=20")]);
  state.gateways = gws;
  const online = gws.filter((g) => g.online === true).length;
  const silent = gws.filter((g) => g.silent);
  const broken = gws.filter((g) => g.chain !== "ok" && g.chain !== "none");
  const uniq = (xs) => [...new Set(xs)];
  const summary = el("div", { class: "cards", id: "summary" },
    el("div", { class: "card" }, el("h3", {}, "Gateways"), el("div", { class: "big", id: "total" }, gws.length),
      el("div", { class: "muted" }, online + " online, " + silent.length + " silent, " + broken.length + " with chain problems")),
    card("By vendor", countBy(gws, (g) => uniq((g.modules || []).map((m) => m.vendor_name || m.vendor)))),
    card("By origin country", countBy(gws, (g) => uniq((g.modules || []).map((m) => m.origin_country)))),
    card("By verdict", countBy(gws, (g) => [g.verdict || "none"])));
  const link = (g) => el("a", { href: "#/gateway/" + encodeURIComponent(g.gateway_id) }, g.gateway_id);
  const problems = el("div", { class: "cards" },
    el("div", { class: "card", id: "silent" }, el("h3", {}, "Gone silent"),
      silent.length ? el("ul", {}, silent.map((g) => el("li", {}, link(g), el("span", { class: "muted" }, when(g.last_seen_ms)))))
        : el("p", { class: "empty" }, "none")),
    el("div", { class: "card", id: "broken" }, el("h3", {}, "Chain problems"),
      broken.length ? el("ul", {}, broken.map((g) => el("li", {}, link(g), badge(g.chain, g.chain))))
        : el("p", { class: "empty" }, "none")));

  const filter = el("input", { id: "filter", type: "search", placeholder: "Filter: gateway, vendor, model, firmware, IMEI, country…", value: state.filter, "aria-label": "Filter gateways" });
  const verdicts = el("select", { id: "verdict", "aria-label": "Verdict" }, el("option", { value: "" }, "any verdict"),
    ["allow", "alert", "deny"].map((v) => el("option", { value: v, selected: state.verdict === v }, v)));
  const count = el("span", { class: "muted", id: "count" });
  const tbody = el("tbody", {});
  const head = el("tr", {}, columns.map(([key, title]) =>
    el("th", { "data-sort": key, class: state.sort === key ? (state.dir > 0 ? "asc" : "desc") : null, scope: "col" }, title)));
  head.addEventListener("click", (ev) => {
    const th = ev.target.closest("th[data-sort]");
    if (!th) return;
    const key = th.dataset.sort;
    state.dir = state.sort === key ? -state.dir : 1;
    state.sort = key;
    for (const h of head.children) h.className = h.dataset.sort === key ? (state.dir > 0 ? "asc" : "desc") : "";
    renderTable(tbody, count);
  });
  filter.addEventListener("input", () => { state.filter = filter.value; renderTable(tbody, count); });
  verdicts.addEventListener("change", () => { state.verdict = verdicts.value; renderTable(tbody, count); });
  renderTable(tbody, count);

  const rejRows = rej.map((r) => el("tr", {}, el("td", {}, when(r.received_ms)), el("td", {}, r.gateway_id),
    el("td", { class: "num" }, r.seq === null ? "—" : r.seq), el("td", {}, badge(r.reason, "bad")), el("td", {}, r.detail)));
  app.replaceChildren(
    el("h2", {}, "Fleet"), summary, problems,
    el("h2", {}, "Gateways"), el("div", { class: "controls" }, filter, verdicts, count),
    el("table", { id: "fleet" }, el("thead", {}, head), tbody),
    el("h2", {}, "Latest rejections"),
    rej.length ? el("table", { id: "rejections" }, el("thead", {}, el("tr", {}, ["Received", "Gateway", "Seq", "Reason", "Detail"].map((t) => el("th", {}, t)))), el("tbody", {}, rejRows))
      : el("p", { class: "empty" }, "none"));
  const f = document.getElementById("filter");
  if (state.filter && f) { f.focus(); f.setSelectionRange(f.value.length, f.value.length); }
}

function table(id, heads, rows) {
  if (!rows.length) return el("p", { class: "empty", id }, "none");
  return el("table", { id }, el("thead", {}, el("tr", {}, heads.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows.map((r) => el("tr", {}, r.map((c) => el("td", {}, c))))));
}

async function renderGateway(app, id) {
  const g = await getJSON("api/v1/gateways/" + encodeURIComponent(id));
  const [on, oncls] = onlineText(g);
  const kv = (pairs) => el("dl", { class: "kv" }, pairs.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  const modules = (g.modules || []).map((m) => el("div", { class: "card" },
    el("h3", {}, (m.vendor_name || m.vendor) + " " + m.model),
    kv([["Manufacturer", m.manufacturer], ["Model", m.model], ["Firmware", m.firmware + (m.firmware_detail ? " (" + m.firmware_detail + ")" : "")],
      ["IMEI", m.imei], ["IMSI", m.imsi], ["ICCID", m.iccid], ["SIM", m.sim], ["Origin", m.origin_country],
      ["Lists", (m.lists || []).join(", ") || "—"], ["Port", m.port || "—"], ["USB", (m.usb || {}).vid + ":" + (m.usb || {}).pid],
      ["Network", [(m.network || {}).operator, (m.network || {}).plmn, (m.network || {}).rat, (m.network || {}).state].filter((x) => x).join(" · ") || "—"],
      ["Verdict", badge(m.verdict || "none", m.verdict)], ["Enforcement", m.enforcement || "—"],
      ["Findings", (m.findings || []).length ? el("ul", {}, m.findings.map((f) => el("li", {}, badge(f.severity, f.severity === "high" ? "deny" : "alert"), " ", f.id + ": " + f.detail))) : "none"]])));
  app.replaceChildren(
    el("p", {}, el("a", { href: "#/" }, "← fleet")),
    el("h2", { id: "gateway-title" }, "Gateway " + g.gateway_id),
    el("div", { class: "cards" },
      el("div", { class: "card" }, el("h3", {}, "State"), kv([["Status", [badge(on, oncls), g.silent ? [" ", badge("silent")] : null]],
        ["Verdict", badge(g.verdict || "none", g.verdict)], ["Chain", [badge(g.chain, g.chain), g.chain_detail ? " " + g.chain_detail : ""]],
        ["Missing reports", g.missing], ["Last report", when(g.last_seen_ms)], ["Seq", g.last_seq], ["Reports", g.reports], ["Rejections", g.rejected]])),
      el("div", { class: "card" }, el("h3", {}, "Identity"), kv([["Trust", g.trust || "—"], ["Key id", g.kid || "—"],
        ["Announced key id", g.status_kid ? g.status_kid + (g.kid && g.status_kid !== g.kid ? " (differs!)" : "") : "—"],
        ["Boot id", g.boot_id || "—"], ["Agent", g.agent_version || "—"], ["Clock synced", g.clock_synced ? "yes" : "no"],
        ["First seen", when(g.first_seen_ms)], ["Outbox", g.outbox_depth === undefined ? "—" : g.outbox_depth + " queued, " + g.dropped + " dropped ever"]]))),
    el("h2", {}, "Modules"), modules.length ? el("div", { class: "cards", id: "modules" }, modules) : el("p", { class: "empty" }, "no module reported"),
    el("h2", {}, "Module history"),
    table("history", ["Seq", "Report time", "Change", "IMEI", "Detail"], g.history.map((h) => [h.seq, when(h.time_ms), badge(h.kind, "muted"), h.imei, h.detail])),
    el("h2", {}, "Chain events"),
    table("chain-events", ["Received", "Seq", "Kind", "Detail"], g.chain_events.map((e) => [when(e.received_ms), e.seq, badge(e.kind, e.kind), e.detail])),
    el("h2", {}, "Rejections"),
    table("gw-rejections", ["Received", "Seq", "Reason", "Detail"], g.rejections.map((r) => [when(r.received_ms), r.seq === null ? "—" : r.seq, badge(r.reason, "bad"), r.detail])),
    el("h2", {}, "Challenges"),
    table("challenges", ["Sent", "Outcome", "Answered", "Seq", "By"], g.challenges.map((c) => [when(c.sent_ms), badge(c.outcome, c.outcome === "answered" ? "ok" : c.outcome), c.answered_ms ? when(c.answered_ms) : "—", c.seq || "—", c.origin])));
  document.title = "modemguard · " + g.gateway_id;
}

async function route() {
  const app = document.getElementById("app");
  const m = location.hash.match(/^#\/gateway\/(.+)$/);
  try {
    if (m) await renderGateway(app, decodeURIComponent(m[1]));
    else { document.title = "modemguard fleet"; await renderFleet(app); }
    document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    app.replaceChildren(el("p", { class: "bad" }, "Could not load: " + e.message));
  }
}

window.addEventListener("hashchange", route);
route();
// Refresh the fleet view every 30 s, unless the user is typing a filter.
setInterval(() => { if (!location.hash.startsWith("#/gateway/") && document.activeElement?.id !== "filter") route(); }, 30000);
