// inr-study dashboard: draws the study embedded in #study-data with Plotly; no network access.
"use strict";

const DATA = JSON.parse(document.getElementById("study-data").textContent);
const METRICS = {
  psnr: { label: "PSNR (dB)", higherIsBetter: true },
  ms_ssim_db: { label: "MS-SSIM (dB)", higherIsBetter: true },
  lpips: { label: "LPIPS (lower is better)", higherIsBetter: false },
};
const DATASET = "__dataset__";
// Paper Fig. 2 style: a colour per loss, a marker per point-wise distortion, SSIM mixes dotted.
const LOSS_COLOURS = { l1: "#1f77b4", mse: "#d62728", logcosh: "#2ca02c", lc_ssim: "#9467bd", l1_ssim: "#ff7f0e" };
const EXTRA_COLOURS = ["#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"];
const DISTORTION_MARKERS = { l1: "circle", mse: "square", logcosh: "diamond" };
const CODEC_MARKER_VARIANTS = ["", "-open", "-dot"];

const state = { metric: "psnr", image: DATASET, codecs: new Set(), losses: new Set() };

let gridRecords, searchRecords, inrCodecs, otherLosses;
function indexRecords() {
  gridRecords = DATA.records.filter((r) => !r.search);
  searchRecords = DATA.records.filter((r) => r.search);
  inrCodecs = [...new Set(gridRecords.filter((r) => r.loss).map((r) => r.codec))].sort();
  // Losses outside the paper's five, in a stable order, for the extra colours.
  otherLosses = [...new Set(gridRecords.map((r) => family(r.loss)))].filter((n) => n && !LOSS_COLOURS[n]);
}
indexRecords();

function family(loss) {
  return loss ? loss.split("(")[0] : null;
}
function distortion(loss) {
  const name = family(loss);
  if (name === "lc_ssim") return "logcosh";
  if (name === "l1_ssim") return "l1";
  return name.split(":")[0];
}
function curveName(r) {
  return r.loss ? `${r.codec} · ${r.loss}` : r.codec;
}
function rateSetting(r) {
  return r.lmbda ?? r.configuration ?? r.quality;
}
function lossColour(loss) {
  const name = family(loss);
  if (LOSS_COLOURS[name]) return LOSS_COLOURS[name];
  return EXTRA_COLOURS[otherLosses.indexOf(name) % EXTRA_COLOURS.length];
}
function runUrl(r) {
  return `${DATA.mlflow_ui}/#/experiments/${r.experiment_id}/runs/${r.run_id}`;
}
function mean(values) {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

// One point per rate setting: the run itself (one image) or the mean over every image of the curve.
function curvePoints(records, image, metric) {
  const groups = new Map();
  for (const r of records) {
    if (image !== DATASET && r.image !== image) continue;
    const key = `${rateSetting(r)}|${r.seed}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(r);
  }
  const images = new Set(records.map((r) => r.image));
  const points = [];
  for (const rows of groups.values()) {
    if (rows.some((r) => r[metric] === null || r[metric] === undefined)) continue;
    if (image === DATASET && new Set(rows.map((r) => r.image)).size !== images.size) continue;
    points.push({
      bpp: mean(rows.map((r) => r.bpp)),
      value: mean(rows.map((r) => r[metric])),
      rows: rows,
    });
  }
  return points.sort((a, b) => a.bpp - b.bpp);
}

function hoverText(point) {
  const r = point.rows[0];
  const head = [`<b>${curveName(r)}</b>`];
  if (r.alpha !== null && r.alpha !== undefined) head.push(`α = ${r.alpha}`);
  if (r.lmbda !== null) head.push(`λ = ${r.lmbda}`);
  if (r.configuration !== null) head.push(`width ${r.configuration}`);
  if (r.quality !== null) head.push(`quality ${r.quality}`);
  const values = Object.keys(METRICS)
    .map((m) => (r[m] === null ? `${m}: missing` : `${m}: ${mean(point.rows.map((x) => x[m])).toFixed(4)}`));
  if (point.rows.length === 1) {
    return [...head, `image ${r.image}`, `bpp ${r.bpp.toFixed(4)}`, ...values, `run ${r.run_id}`].join("<br>");
  }
  return [...head, `mean of ${point.rows.length} images`, `bpp ${point.bpp.toFixed(4)}`, ...values].join("<br>");
}

function rdTraces() {
  const metric = state.metric;
  const byCurve = new Map();
  for (const r of gridRecords) {
    if (!state.codecs.has(r.codec) || (r.loss && !state.losses.has(r.loss))) continue;
    const name = curveName(r);
    if (!byCurve.has(name)) byCurve.set(name, []);
    byCurve.get(name).push(r);
  }
  const traces = [];
  const all = [];
  for (const [name, records] of [...byCurve.entries()].sort()) {
    const points = curvePoints(records, state.image, metric);
    if (!points.length) continue;
    all.push(...points);
    const r = records[0];
    const classical = !r.loss;
    const variant = CODEC_MARKER_VARIANTS[Math.max(0, inrCodecs.indexOf(r.codec)) % 3];
    traces.push({
      type: "scatter",
      mode: "lines+markers",
      name: name,
      x: points.map((p) => p.bpp),
      y: points.map((p) => p.value),
      text: points.map(hoverText),
      hovertemplate: "%{text}<extra></extra>",
      customdata: points.map((p) => (p.rows.length === 1 ? runUrl(p.rows[0]) : null)),
      line: classical
        ? { color: "#555", dash: "dash", width: 1.5 }
        : { color: lossColour(r.loss), dash: family(r.loss).includes("ssim") ? "dot" : "solid", width: 2 },
      marker: classical
        ? { symbol: "x", size: 7, color: "#555" }
        : { symbol: (DISTORTION_MARKERS[distortion(r.loss)] || "triangle-up") + variant, size: 8 },
    });
  }
  if (all.length) traces.push(paretoTrace(all, metric));
  if (state.image === DATASET) traces.push(...referenceTraces(metric));
  return traces;
}

// Non-dominated points among everything shown: less rate and better quality than any other.
function paretoTrace(points, metric) {
  const sign = METRICS[metric].higherIsBetter ? 1 : -1;
  const front = [];
  let best = -Infinity;
  for (const p of [...points].sort((a, b) => a.bpp - b.bpp || sign * (b.value - a.value))) {
    if (sign * p.value > best) {
      front.push(p);
      best = sign * p.value;
    }
  }
  return {
    type: "scatter",
    mode: "lines",
    name: "Pareto front",
    x: front.map((p) => p.bpp),
    y: front.map((p) => p.value),
    line: { color: "rgba(0,0,0,0.35)", width: 6 },
    hoverinfo: "skip",
  };
}

function referenceTraces(metric) {
  return DATA.references
    .filter((ref) => ref[metric])
    .map((ref) => ({
      type: "scatter",
      mode: "lines",
      name: `${ref.name} (reference)`,
      x: ref.bpp,
      y: ref[metric],
      line: { color: "#999", dash: "longdash", width: 1 },
      hovertemplate: `${ref.name}<br>bpp %{x:.3f}<br>${metric} %{y:.3f}<extra></extra>`,
    }));
}

function drawRd() {
  const where = state.image === DATASET ? "dataset (mean of per-image values per rate setting)" : state.image;
  Plotly.react(
    "rd-plot",
    rdTraces(),
    {
      title: { text: `${METRICS[state.metric].label} vs rate — ${where}` },
      xaxis: { title: { text: "bits per pixel (from the files)" } },
      yaxis: { title: { text: METRICS[state.metric].label } },
      hovermode: "closest",
      legend: { orientation: "v" },
      margin: { t: 50 },
    },
    { responsive: true, displaylogo: false }
  );
}

function drawAlpha() {
  const box = document.getElementById("alpha-plot");
  if (!searchRecords.length) {
    box.style.height = "auto";
    box.textContent = "This study has no search runs (no `search:` section in its config).";
    return;
  }
  const metric = state.metric;
  const bySearch = new Map();
  for (const r of searchRecords) {
    if (!bySearch.has(r.search)) bySearch.set(r.search, new Map());
    const key = `${r.alpha}|${r.lmbda}|${r.configuration}`;
    const samples = bySearch.get(r.search);
    if (!samples.has(key)) samples.set(key, []);
    samples.get(key).push(r);
  }
  const traces = [];
  for (const [task, samples] of [...bySearch.entries()].sort()) {
    const points = [...samples.values()]
      .filter((rows) => rows.every((r) => r[metric] !== null && r.alpha !== null))
      .map((rows) => ({ alpha: rows[0].alpha, value: mean(rows.map((r) => r[metric])), bpp: mean(rows.map((r) => r.bpp)), r: rows[0] }))
      .sort((a, b) => a.alpha - b.alpha);
    traces.push({
      type: "scatter",
      mode: "markers",
      name: task,
      x: points.map((p) => p.alpha),
      y: points.map((p) => p.value),
      text: points.map((p) => `${task}<br>α ${p.alpha}<br>${p.r.lmbda !== null ? "λ " + p.r.lmbda : "width " + p.r.configuration}<br>bpp ${p.bpp.toFixed(4)}`),
      hovertemplate: "%{text}<br>" + metric + " %{y:.4f}<extra></extra>",
    });
    const chosen = DATA.recommendations.find((rec) => rec.task === task && rec.reached && rec.metric === metric);
    if (chosen) {
      traces.push({
        type: "scatter",
        mode: "markers",
        name: `${task}: recommended α`,
        x: [chosen.alpha],
        y: [chosen.value],
        marker: { symbol: "star", size: 16, color: "gold", line: { color: "black", width: 1 } },
        hovertemplate: `recommended α ${chosen.alpha}<br>bpp ${chosen.bpp.toFixed(4)}<extra></extra>`,
      });
    }
  }
  Plotly.react(
    "alpha-plot",
    traces,
    {
      title: { text: `${METRICS[metric].label} vs α per codec, loss family and target bitrate` },
      xaxis: { title: { text: "α (weight of 1 − SSIM)" } },
      yaxis: { title: { text: METRICS[metric].label } },
      hovermode: "closest",
      showlegend: true,
    },
    { responsive: true, displaylogo: false }
  );
}

// Adds a checked box for each value not shown yet (a live page gains codecs and losses).
function checkboxes(containerId, values, selected, label) {
  const box = document.getElementById(containerId);
  const shown = new Set([...box.querySelectorAll("input")].map((input) => input.value));
  for (const value of values) {
    if (shown.has(value)) continue;
    selected.add(value);
    const item = document.createElement("label");
    const input = document.createElement("input");
    input.type = "checkbox";
    input.checked = true;
    input.value = value;
    input.addEventListener("change", () => {
      input.checked ? selected.add(value) : selected.delete(value);
      drawRd();
    });
    item.append(input, ` ${label(value)} `);
    box.append(item);
  }
}

function addControls() {
  const imageSelect = document.getElementById("image");
  const listed = new Set([...imageSelect.options].map((o) => o.value));
  for (const image of [...new Set(gridRecords.map((r) => r.image))].sort()) {
    if (!listed.has(image)) imageSelect.add(new Option(image, image));
  }
  checkboxes("codecs", [...new Set(gridRecords.map((r) => r.codec))].sort(), state.codecs, (c) => c);
  checkboxes("losses", [...new Set(gridRecords.filter((r) => r.loss).map((r) => r.loss))].sort(), state.losses, (l) => l);
}

// Live mode (inr-study dashboard --serve): runs finished since the last look, from the server.
async function refresh() {
  const response = await fetch("data.json", { cache: "no-store" });
  if (!response.ok) return;
  const fresh = await response.json();
  DATA.records = fresh.records;
  DATA.recommendations = fresh.recommendations;
  indexRecords();
  addControls();
  drawRd();
  drawAlpha();
  document.getElementById("run-count").textContent = DATA.records.length;
}

function setUp() {
  const metricSelect = document.getElementById("metric");
  for (const [key, m] of Object.entries(METRICS)) metricSelect.add(new Option(m.label, key));
  metricSelect.addEventListener("change", () => {
    state.metric = metricSelect.value;
    drawRd();
    drawAlpha();
  });
  const imageSelect = document.getElementById("image");
  imageSelect.add(new Option("dataset mean", DATASET));
  imageSelect.addEventListener("change", () => {
    state.image = imageSelect.value;
    drawRd();
  });
  addControls();
  drawRd();
  drawAlpha();
  if (DATA.live_seconds) setInterval(refresh, DATA.live_seconds * 1000);
  const plot = document.getElementById("rd-plot");
  plot.on("plotly_click", (event) => {
    const url = event.points[0].customdata;
    const link = document.getElementById("run-link");
    if (!url) {
      link.removeAttribute("href");
      link.textContent = "a dataset mean has no single run: pick an image to link points to runs";
      return;
    }
    link.href = url;
    link.textContent = url;
    window.open(url, "_blank", "noopener");
  });
  document.body.dataset.ready = "true";
}

setUp();
