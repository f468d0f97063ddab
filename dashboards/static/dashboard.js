// inr-study dashboard: draws the study embedded in #study-data with Plotly; no network access.
"use strict";

const DATA = JSON.parse(document.getElementById("study-data").textContent);
const DATASET = "__dataset__";
// Styles come with the payload (dashboards/style.py), shared with the static figures.
let STYLE;

let METRICS, CODECS;
const state = { metric: null, image: DATASET, codecs: new Set(), losses: new Set() };

let gridRecords, searchRecords;
function indexRecords() {
  STYLE = DATA.style;
  METRICS = Object.fromEntries(DATA.metrics.map((m) => [m.key, m]));
  CODECS = Object.fromEntries(DATA.codecs.map((c, i) => [c.name, { ...c, index: i }]));
  state.metric = state.metric || DATA.metrics[0].key;
  gridRecords = DATA.records.filter((r) => !r.search);
  searchRecords = DATA.records.filter((r) => r.search);
}
indexRecords();

// Each curve's name, colour, dash and marker come with the data (dashboards/style.py, the
// static figures' convention), keyed by the curve label each record carries
// (study/results/labels.py): nothing here picks a style or spells a label.
function curveStyle(r) {
  return STYLE.curves[r.curve];
}
function curveName(r) {
  const style = curveStyle(r);
  return style ? style.name : r.curve;
}
function rateText(r) {
  const label = CODECS[r.codec] ? CODECS[r.codec].rate_label : r.rate_parameter;
  return `${label} ${r.rate}`;
}
function runUrl(r) {
  return DATA.run_url.replace("{experiment}", r.experiment_id).replace("{run}", r.run_id);
}
function mean(values) {
  return values.reduce((a, b) => a + b, 0) / values.length;
}
// Where a setting lies on its codec's declared rate axis, counted in the direction the codec says
// its files grow; null for a codec the page has no declaration of.
function ratePosition(r) {
  const codec = CODECS[r.codec];
  if (!codec || codec.rate_increases === null) return null;
  const value = codec.rate_choices ? codec.rate_choices.indexOf(r.rate) : Number(r.rate);
  return codec.rate_increases ? value : -value;
}

function everySeedHasEveryImage(rows, count) {
  const bySeed = new Map();
  for (const r of rows) {
    if (!bySeed.has(r.seed)) bySeed.set(r.seed, new Set());
    bySeed.get(r.seed).add(r.image);
  }
  return [...bySeed.values()].every((images) => images.size === count);
}

// One point per rate setting: the run itself (one image) or the mean over every image of the curve.
function curvePoints(records, image, metric) {
  const groups = new Map();
  for (const r of records) {
    if (image !== DATASET && r.image !== image) continue;
    const key = `${r.rate}`;  // seeds are averaged, like images
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(r);
  }
  const images = new Set(records.map((r) => r.image));
  const points = [];
  for (const rows of groups.values()) {
    if (rows.some((r) => r[metric] === null || r[metric] === undefined)) continue;
    // A dataset point needs every image of the curve with every seed at this setting (as the reports).
    if (image === DATASET && !everySeedHasEveryImage(rows, images.size)) continue;
    points.push({
      bpp: mean(rows.map((r) => r.bpp)),
      value: mean(rows.map((r) => r[metric])),
      rows: rows,
    });
  }
  // Joined in the order of the rate setting, so a file that shrinks as the setting grows shows.
  const order = (p) => ratePosition(p.rows[0]) ?? p.bpp;
  return points.sort((a, b) => order(a) - order(b));
}

// Each step along a curve where the rate setting grows and the files shrink.
function rateReversals(name, points) {
  const steps = [];
  for (let i = 1; i < points.length; i++) {
    const [a, b] = [points[i - 1], points[i]];
    if (ratePosition(a.rows[0]) === null || b.bpp >= a.bpp) continue;
    const preset = a.rows[0].preset ? ` (preset ${a.rows[0].preset})` : "";
    steps.push(`${name}${preset}: ${rateText(a.rows[0])} → ${b.rows[0].rate}, ${a.bpp.toFixed(3)} → ${b.bpp.toFixed(3)} bpp`);
  }
  return steps;
}

// Where the file's bits go (the parts the payload declares), for INR fits that record them.
function rateParts(rows) {
  const parts = DATA.rate_parts;
  if (rows.some((x) => parts.some((p) => x[p.key] === null || x[p.key] === undefined))) return [];
  const bits = (key) => Math.round(mean(rows.map((x) => x[key])));
  return [`bits: ${parts.map((p) => `${p.label} ${bits(p.key)}`).join(", ")}`];
}

function hoverText(point) {
  const r = point.rows[0];
  const head = [`<b>${curveName(r)}</b>`];
  if (r.alpha !== null && r.alpha !== undefined) head.push(`α = ${r.alpha}`);
  head.push(rateText(r));
  const values = Object.keys(METRICS)
    .map((m) => (r[m] === null ? `${m}: missing` : `${m}: ${mean(point.rows.map((x) => x[m])).toFixed(4)}`));
  if (point.rows.length === 1) {
    return [...head, `image ${r.image}`, `bpp ${r.bpp.toFixed(4)}`, ...rateParts(point.rows), ...values, `run ${r.run_id}`].join("<br>");
  }
  return [...head, `mean of ${point.rows.length} runs (images × seeds)`, `bpp ${point.bpp.toFixed(4)}`, ...rateParts(point.rows), ...values].join("<br>");
}

function rdTraces() {
  const metric = state.metric;
  const byCurve = new Map();
  // A study still growing: dataset curves over the images every curve holds (as the figures).
  const shared =
    state.image === DATASET && DATA.curve_images?.length ? new Set(DATA.curve_images) : null;
  for (const r of gridRecords) {
    if (!state.codecs.has(r.codec) || (r.loss && !state.losses.has(r.loss))) continue;
    if (shared && !shared.has(r.image)) continue;
    const name = curveName(r);
    if (!byCurve.has(name)) byCurve.set(name, []);
    byCurve.get(name).push(r);
  }
  const traces = [];
  const all = [];
  const reversals = [];
  for (const [name, records] of [...byCurve.entries()].sort()) {
    const points = curvePoints(records, state.image, metric);
    if (!points.length) continue;
    all.push(...points);
    reversals.push(...rateReversals(name, points));
    const r = records[0];
    traces.push({
      type: "scatter",
      mode: "lines+markers",
      name: name,
      x: points.map((p) => p.bpp),
      y: points.map((p) => p.value),
      text: points.map(hoverText),
      hovertemplate: "%{text}<extra></extra>",
      customdata: points.map((p) => (p.rows.length === 1 ? runUrl(p.rows[0]) : null)),
      line: curveStyle(r).line,
      marker: { ...curveStyle(r).marker, size: 8 },
    });
  }
  if (all.length) traces.push(paretoTrace(all, metric));
  if (state.image === DATASET) traces.push(...referenceTraces(metric));
  document.getElementById("rate-notes").textContent = reversals.length
    ? "Files that shrank as the rate setting grew (measured bpp; each codec declares its settings " +
      "in the order its files should grow, and the curve joins them in that order, so it turns " +
      "back here): " + reversals.join("; ") + "."
    : "";
  document.getElementById("metric-note").textContent = DATA.metric_notes[metric] || "";
  return traces;
}

// Non-dominated points among everything shown: less rate and better quality than any other.
function paretoTrace(points, metric) {
  const sign = METRICS[metric].higher_is_better ? 1 : -1;
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
      name: ref.label,
      x: ref.bpp,
      y: ref[metric],
      line: STYLE.reference,
      hovertemplate: `${ref.name}<br>bpp %{x:.3f}<br>${metric} %{y:.3f}<extra></extra>`,
    }));
}

function drawRd() {
  const over = DATA.curve_images_text
    ? `mean over ${DATA.curve_images_text}`
    : "mean of per-image values per rate setting";
  const where = state.image === DATASET ? `dataset (${over})` : state.image;
  Plotly.react(
    "rd-plot",
    rdTraces(),
    {
      title: { text: `${METRICS[state.metric].label} vs rate — ${where}` },
      xaxis: { title: { text: "bits per pixel (from the files)" } },
      yaxis: { title: { text: METRICS[state.metric].axis_label } },
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
  if (!DATA.alpha_rows.length) {
    box.style.height = "auto";
    box.textContent = "No α at matched rate here: the plot needs a match-mode search, read from its study folder or a published copy with its config.";
    return;
  }
  const metric = state.metric;
  // Match mode: each α at matched rate, as the study's α tables judge it (the server sends them).
  const byTask = new Map();
  for (const row of DATA.alpha_rows) {
    if (!byTask.has(row.task)) byTask.set(row.task, []);
    byTask.get(row.task).push(row);
  }
  const traces = [];
  for (const [task, rows] of [...byTask.entries()].sort()) {
    const points = rows
      .filter((p) => p.alpha !== null && p.images === p.of && p[metric] !== null)
      .sort((a, b) => a.alpha - b.alpha);
    traces.push({
      type: "scatter",
      mode: "markers",
      name: task,
      x: points.map((p) => p.alpha),
      y: points.map((p) => p[metric]),
      // Open markers: the rate could not be matched on every image.
      marker: { symbol: points.map((p) => (p.on_target === p.of ? "circle" : "circle-open")), size: 9 },
      text: points.map((p) => `${task}<br>α ${p.alpha}<br>mean bpp ${p.bpp.toFixed(4)} (on target on ${p.on_target}/${p.of} images)`),
      hovertemplate: "%{text}<br>" + metric + " %{y:.4f}<extra></extra>",
    });
    const best = points.find((p) => p.best);
    if (best && metric === DATA.alpha_metric) {
      // Open star: some α the study plans for this task are not on target on every image yet.
      const note = best.final ? "" : ` so far (${best.alphas_in} of ${best.alphas_planned} α on target)`;
      traces.push({
        type: "scatter",
        mode: "markers",
        name: `${task}: best α${note}`,
        x: [best.alpha],
        y: [best[metric]],
        marker: { symbol: best.final ? "star" : "star-open", size: 16, color: "gold", line: { color: "black", width: 1 } },
        hovertemplate: `best α ${best.alpha}${note} (on target on every image)<br>bpp ${best.bpp.toFixed(4)}<extra></extra>`,
      });
    }
  }
  Plotly.react(
    "alpha-plot",
    traces,
    {
      title: { text: `${METRICS[metric].label} vs α per codec, loss family and target bitrate` },
      xaxis: { title: { text: "α (the loss family's mixing weight)" } },
      yaxis: { title: { text: METRICS[metric].axis_label } },
      hovermode: "closest",
      showlegend: true,
    },
    { responsive: true, displaylogo: false }
  );
}

// Search records by task, then by a sample key; each group holds one fit per image.
function groupSamples(records, sampleKey) {
  const byTask = new Map();
  for (const r of records) {
    if (!byTask.has(r.search)) byTask.set(r.search, new Map());
    const samples = byTask.get(r.search);
    const key = sampleKey(r);
    if (!samples.has(key)) samples.set(key, []);
    samples.get(key).push(r);
  }
  return byTask;
}

// Pareto mode: every sampled (α, rate setting) of a task, mean over images, and its front.
function drawSearchPareto() {
  const box = document.getElementById("pareto-plot");
  const tasks = new Set(DATA.search_tasks.filter((t) => t.mode === "pareto").map((t) => t.name));
  if (!tasks.size) {
    box.style.height = "auto";
    box.textContent = "This study has no Pareto-mode search.";
    return;
  }
  const metric = state.metric;
  const byTask = groupSamples(searchRecords.filter((r) => tasks.has(r.search)), (r) => `${r.alpha}|${r.rate}`);
  const traces = [];
  for (const [task, samples] of [...byTask.entries()].sort()) {
    const points = [...samples.values()]
      .filter((rows) => rows.every((r) => r[metric] !== null))
      .map((rows) => ({ bpp: mean(rows.map((r) => r.bpp)), value: mean(rows.map((r) => r[metric])), rows: rows }));
    traces.push({
      type: "scatter",
      mode: "markers",
      name: `${task} samples`,
      x: points.map((p) => p.bpp),
      y: points.map((p) => p.value),
      text: points.map((p) => `${task}<br>α ${p.rows[0].alpha}<br>${rateText(p.rows[0])}`),
      hovertemplate: "%{text}<br>bpp %{x:.4f}<br>" + metric + " %{y:.4f}<extra></extra>",
    });
    if (points.length) traces.push({ ...paretoTrace(points, metric), name: `${task} front`, line: { width: 3 } });
  }
  Plotly.react(
    "pareto-plot",
    traces,
    {
      title: { text: `${METRICS[metric].label} vs rate: searched samples and their Pareto front per codec and loss family` },
      xaxis: { title: { text: "bits per pixel (mean over images)" } },
      yaxis: { title: { text: METRICS[metric].axis_label } },
      hovermode: "closest",
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
let shownCrops = null; // what the crops panel shows: redrawn only when the server's choice changes
async function refresh() {
  const response = await fetch("data.json", { cache: "no-store" });
  if (!response.ok) return;
  const fresh = await response.json();
  Object.assign(DATA, fresh);
  // Drawn once by the page, so redrawn here: the study's images (and so the references that
  // match them), its BD-rates, the claims' verdicts and the runs nearest the crops' rate change
  // as it grows.
  document.getElementById("bd-rates").innerHTML = fresh.bd_html;
  document.getElementById("claims").innerHTML = fresh.claims_html;
  if (fresh.crops_key !== undefined && fresh.crops_key !== shownCrops) {
    document.getElementById("decoded-crops").innerHTML = fresh.crops_html;
    shownCrops = fresh.crops_key;
  }
  document.getElementById("reference-notes").replaceChildren(
    ...DATA.reference_notes.map((text) => Object.assign(document.createElement("p"), { className: "note", textContent: text })),
  );
  indexRecords();
  addControls();
  labelMetrics();
  drawRd();
  drawAlpha();
  drawSearchPareto();
  document.getElementById("run-count").textContent = DATA.records.length;
}

// A metric no grid run has a value for says so in the menu; the note under the plot says why.
function labelMetrics() {
  for (const option of document.getElementById("metric").options) {
    const empty = !gridRecords.some((r) => r[option.value] !== null && r[option.value] !== undefined);
    option.textContent = METRICS[option.value].label + (empty ? " (no values)" : "");
  }
}

function setUp() {
  const metricSelect = document.getElementById("metric");
  for (const m of DATA.metrics) metricSelect.add(new Option(m.label, m.key));
  labelMetrics();
  metricSelect.addEventListener("change", () => {
    state.metric = metricSelect.value;
    drawRd();
    drawAlpha();
    drawSearchPareto();
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
  drawSearchPareto();
  // The next look only once this one is drawn: a slow look (crops decoded) never piles up.
  // A failed look (the server stopped, or restarts) is tried again at the next.
  const poll = () => setTimeout(() => refresh().catch(() => {}).finally(poll), DATA.live_seconds * 1000);
  if (DATA.live_seconds) poll();
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
