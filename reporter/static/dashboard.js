// The sustainability dashboard: reads the reporter's JSON API and draws it. No framework, no
// build step, nothing fetched from anywhere but this reporter.

const API = "/api/v1/sustainability";
const FORECAST_HOURS = 24;
const HISTORY_PERIODS = [
  ["day", "Last day", 1],
  ["week", "Last 7 days", 7],
  ["month", "Last 30 days", 30],
];

async function getJson(path) {
  const response = await fetch(API + path, { headers: { Accept: "application/json" } });
  if (!response.ok) {
    const error = new Error(`${path} answered ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return response.json();
}

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== undefined && value !== null) node.setAttribute(name, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function number(value, digits = 0) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return Number(value).toLocaleString("en", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

function card(id, label, value, detail, tone) {
  return el(
    "div",
    { class: "card", id },
    el("div", { class: "label" }, label),
    el("div", { class: tone ? `value ${tone}` : "value" }, value),
    detail ? el("div", { class: "detail" }, detail) : null,
  );
}

function signedPercent(value) {
  if (value === null || value === undefined) return "–";
  const sign = value > 0 ? "+" : value < 0 ? "−" : "";
  return `${sign}${number(Math.abs(value), 1)} %`;
}

function renderFreshness(freshness) {
  const status = document.getElementById("freshness");
  const kind = freshness.static ? "static" : freshness.stale ? "stale" : "live";
  const text = {
    live: "Live carbon data",
    stale: `Stale carbon data in ${freshness.staleRegions.length} region(s)`,
    static: `Annual averages only in ${freshness.staticRegions.length} region(s)`,
  }[kind];
  const taken = new Date(freshness.snapshotTakenAt);
  status.className = `status ${kind}`;
  status.dataset.freshness = kind;
  const stamp = taken.toISOString().slice(0, 16).replace("T", " ");
  status.textContent = `${text} · updated ${stamp} UTC`;
}

function renderSummary(metrics) {
  document.getElementById("summary-cards").replaceChildren(
    card("cluster-emissions", "Cluster emissions", `${number(metrics.gCO2eqPerHour, 0)} g/h`,
      `${number(metrics.kgCO2eqPerDay, 2)} kgCO₂eq a day`),
    card("cluster-power", "Power", `${number(metrics.powerWatts, 0)} W`, `${metrics.nodes} nodes`),
    card("cluster-intensity", "Node-weighted intensity",
      `${number(metrics.nodeWeightedCarbonIntensity, 0)}`, "gCO₂eq/kWh"),
    card("cluster-regions", "Regions", String(metrics.regions),
      `${metrics.nodesWithoutIntensity} node(s) without data`),
  );
}

function renderReplicas(replicas) {
  const savings = replicas.savingsPercent;
  const tone = savings === null || savings === undefined ? null : savings >= 0 ? "good" : "bad";
  document.getElementById("replica-cards").replaceChildren(
    card("replica-count", "Read replicas", `${replicas.placed} of ${replicas.total}`, "placed"),
    card("replica-greenest", "In the greenest regions", String(replicas.inGreenestRegion),
      replicas.greenestRegions.join(", ") || "–"),
    card("replica-emissions", "Read-replica emissions", `${number(replicas.gCO2eqPerHour, 2)} g/h`,
      `baseline ${number(replicas.baselineGCO2eqPerHour, 2)} g/h`),
    card("replica-savings", "Savings vs baseline", signedPercent(savings), replicas.baseline, tone),
  );
  const constrained = replicas.constrained
    ? ` ${replicas.constrained} replica(s) constrained by jurisdiction or node selectors.`
    : "";
  document.getElementById("replica-regions").textContent =
    `Baseline: ${replicas.baseline}.${constrained}`;
}

function sparkline(points) {
  const width = 220;
  const height = 44;
  const pad = 2;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "forecast");
  svg.setAttribute("width", width + 40);
  svg.setAttribute("height", height);
  svg.setAttribute("role", "img");
  if (points.length < 2) {
    svg.dataset.points = "0";
    svg.setAttribute("aria-label", "no forecast");
    const text = document.createElementNS(svg.namespaceURI, "text");
    text.setAttribute("x", "0");
    text.setAttribute("y", String(height / 2));
    text.textContent = "no forecast";
    svg.append(text);
    return svg;
  }
  const values = points.map((p) => p.carbonIntensity);
  const low = Math.min(...values);
  const high = Math.max(...values);
  const span = high - low || 1;
  const coordinates = values.map((v, i) => {
    const x = pad + (i * (width - 2 * pad)) / (values.length - 1);
    const y = pad + ((high - v) * (height - 2 * pad)) / span;
    return `${x.toFixed(1)},${y.toFixed(1)}`;
  });
  const line = document.createElementNS(svg.namespaceURI, "polyline");
  line.setAttribute("points", coordinates.join(" "));
  svg.append(line);
  for (const [value, y] of [[high, 9], [low, height - 2]]) {
    const label = document.createElementNS(svg.namespaceURI, "text");
    label.setAttribute("x", String(width + 4));
    label.setAttribute("y", String(y));
    label.textContent = number(value, 0);
    svg.append(label);
  }
  svg.dataset.points = String(values.length);
  svg.setAttribute("aria-label",
    `forecast from ${number(values[0], 0)} to ${number(values[values.length - 1], 0)} gCO₂eq/kWh`);
  return svg;
}

async function forecastPoints(region) {
  try {
    const forecast = await getJson(`/forecast/${encodeURIComponent(region)}?hours=${FORECAST_HOURS}`);
    return forecast.points || [];
  } catch {
    return [];
  }
}

async function replicasByRegion() {
  // Where read replicas run, from the per-node footprints (every page: clusters can be large).
  const counts = new Map();
  let token = null;
  do {
    const page = await getJson(`/nodes?limit=5000${token ? `&continue=${encodeURIComponent(token)}` : ""}`);
    for (const node of page.nodes) {
      const replicas = node.pods.filter((p) => p.role === "read-replica").length;
      if (replicas && node.region) counts.set(node.region, (counts.get(node.region) ?? 0) + replicas);
    }
    token = page.continue;
  } while (token);
  return counts;
}

async function renderRegions(regions) {
  const ranked = regions
    .filter((r) => r.rank !== null && r.rank !== undefined)
    .sort((a, b) => a.rank - b.rank || a.region.localeCompare(b.region));
  const unranked = regions.filter((r) => r.rank === null || r.rank === undefined);
  const ordered = [...ranked, ...unranked];
  const [forecasts, replicas] = await Promise.all([
    Promise.all(ordered.map((r) => forecastPoints(r.region))),
    replicasByRegion().catch(() => new Map()),
  ]);
  const best = ranked.length ? ranked[0].rank : null;
  const rows = ordered.map((r, i) =>
    el(
      "tr",
      {
        class: r.rank === best ? "greenest" : null,
        "data-region": r.region,
        "data-rank": r.rank ?? "",
      },
      el("td", {}, r.rank ?? "–"),
      el("td", {}, el("strong", {}, r.region), " ", el("span", { class: "cloud" }, r.cloud ?? "")),
      el("td", {}, r.zone ?? "–"),
      el("td", { class: "num" }, number(r.carbonIntensity, 0)),
      el("td", { class: "num" }, number(r.expectedCarbonIntensity, 0)),
      el("td", { class: "num" },
        r.renewablePercentage === null || r.renewablePercentage === undefined
          ? "–" : `${number(r.renewablePercentage, 0)} %`),
      el("td", { class: "num" }, r.nodes ?? 0),
      el("td", { class: "num", "data-read-replicas": replicas.get(r.region) ?? 0 },
        replicas.get(r.region) ?? 0),
      el("td", { class: `freshness-${r.freshness}` }, r.freshness ?? "unknown"),
      el("td", {}, sparkline(forecasts[i])),
    ),
  );
  document.getElementById("region-rows").replaceChildren(...rows);
}

async function readHealth() {
  // Health answers 503 with the same document when a critical check fails: show it, not an error.
  try {
    const response = await fetch(`${API}/health`, { headers: { Accept: "application/json" } });
    return await response.json();
  } catch {
    return { status: "unavailable", checks: [] };
  }
}

function renderProviders(health) {
  const providers = health.checks.find((c) => c.name === "providers");
  const items = (providers?.details?.providers ?? []).map((p) => {
    const state = p.backingOff ? "backing off" : p.lastError ? "errors" : "ok";
    const last = p.lastSuccessAt ? `, last answer ${p.lastSuccessAt}` : "";
    return el("li", { "data-provider": p.name }, `${p.name}: ${state} (${p.calls} calls, ${p.errors} errors${last})`);
  });
  const overall = el("li", { "data-health": health.status }, `Reporter health: ${health.status}`);
  document.getElementById("provider-list").replaceChildren(overall, ...items);
}

function isoHour(date) {
  const copy = new Date(date);
  copy.setUTCMinutes(0, 0, 0);
  return copy.toISOString().replace(".000Z", "Z");
}

async function renderHistory() {
  const now = new Date();
  const to = isoHour(now);
  const cards = [];
  let recorded = false;
  for (const [id, label, days] of HISTORY_PERIODS) {
    const from = isoHour(new Date(now.getTime() - days * 86400000));
    let report = null;
    try {
      report = await getJson(`/report?from=${from}&to=${to}&format=json`);
    } catch {
      report = null;
    }
    const totals = report?.totals;
    const missing = totals?.coverage?.missing ?? report?.hours ?? 0;
    if (!totals || !report.hours || missing >= report.hours) {
      cards.push(card(`history-${id}`, label, "–", "no history yet"));
      continue;
    }
    recorded = true;
    const replicas = report.readReplicas ?? {};
    const saved = replicas.savingsKgCO2eq;
    const savedText = saved === null || saved === undefined
      ? "no read-replica savings recorded"
      : `read replicas saved ${number(saved, 2)} kg (${signedPercent(replicas.savingsPercent)})`;
    const node = card(`history-${id}`, label, `${number(totals.locationKgCO2eq, 2)} kgCO₂eq`,
      `${number(totals.energyKWh, 1)} kWh · ${savedText} · ${report.hours - missing} of ${report.hours} h recorded`);
    Object.assign(node.dataset, { from, to, kgco2eq: String(totals.locationKgCO2eq) });
    node.dataset.savingsKgco2eq = saved === null || saved === undefined ? "" : String(saved);
    cards.push(node);
  }
  document.getElementById("history-cards").replaceChildren(...cards);
  document.getElementById("history-note").textContent = recorded
    ? "Location-based estimates from hourly samples; hours without a sample are gaps, not zeros."
    : "This reporter has not recorded any history yet: samples are taken every hour.";
}

async function load() {
  try {
    const [metrics, regions, health] = await Promise.all([
      getJson("/metrics"),
      getJson("/regions"),
      readHealth(),
    ]);
    renderFreshness(metrics.dataFreshness);
    renderSummary(metrics);
    renderReplicas(metrics.readReplicas);
    renderProviders(health);
    await Promise.all([renderRegions(regions.regions), renderHistory()]);
    document.body.dataset.loaded = "true";
  } catch (error) {
    const status = document.getElementById("freshness");
    status.className = "status error";
    status.textContent = `Could not load the sustainability data: ${error.message}`;
    document.body.dataset.loaded = "error";
  }
}

load();
