// The usage page: reads the usage API (relative URLs) and draws plain SVG charts.
// Every drawn value is also an attribute (data-series, data-day, data-value,
// data-rate), so the page can be checked in a browser without reading pixels.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const COLOURS = ["#3366cc", "#dc3912", "#ff9900", "#109618", "#990099", "#0099c6", "#dd4477", "#66aa00"];
const MAX_SERIES = 8; // more groups than this are summed into "other"
const WIDTH = 720;
const HEIGHT = 240;
const MARGIN = { top: 12, right: 16, bottom: 28, left: 64 };

function element(tag, attributes = {}, text = "") {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text) node.textContent = text;
  return node;
}

function svgElement(tag, attributes = {}, text = "") {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text) node.textContent = text;
  return node;
}

function usd(value) {
  if (value === 0) return "$0";
  if (value < 0.01) return "$" + value.toPrecision(2);
  return "$" + value.toFixed(2);
}

function percent(rate) {
  return (rate * 100).toFixed(1) + "%";
}

function label(key) {
  return key === "" ? "(none)" : key;
}

async function getJson(path) {
  const response = await fetch(path);
  const body = await response.json();
  if (!response.ok) throw new Error(`${path}: ${body.error || response.status}`);
  return body;
}

// The cost series of a report: the most expensive groups, the rest as "other".
function costSeries(report) {
  const series = report.groups.slice(0, MAX_SERIES).map((group) => ({
    name: label(group.key),
    values: group.trend.map((day) => day.cost_usd),
  }));
  const rest = report.groups.slice(MAX_SERIES);
  if (rest.length > 0) {
    series.push({
      name: "other",
      values: report.days.map((_, i) => rest.reduce((sum, group) => sum + group.trend[i].cost_usd, 0)),
    });
  }
  return series;
}

function drawLineChart(figure, days, series) {
  figure.replaceChildren();
  if (series.length === 0) {
    figure.append(element("p", { class: "empty" }, "no usage in this range"));
    return;
  }
  const max = Math.max(...series.flatMap((s) => s.values), 0) || 1;
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const x = (i) => MARGIN.left + (days.length === 1 ? plotWidth / 2 : (i * plotWidth) / (days.length - 1));
  const y = (value) => MARGIN.top + plotHeight - (value / max) * plotHeight;
  const svg = svgElement("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img" });
  svg.append(svgElement("line", { class: "axis", x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y(0), y2: y(0) }));
  for (const tick of [0, max / 2, max]) {
    svg.append(svgElement("text", { x: MARGIN.left - 6, y: y(tick) + 4, "text-anchor": "end" }, usd(tick)));
  }
  const step = Math.max(1, Math.ceil(days.length / 7));
  days.forEach((day, i) => {
    if (i % step === 0 || i === days.length - 1) {
      svg.append(svgElement("text", { x: x(i), y: HEIGHT - 8, "text-anchor": "middle" }, day.slice(5)));
    }
  });
  const legend = element("ul", { class: "legend" });
  series.forEach((s, index) => {
    const colour = COLOURS[index % COLOURS.length];
    const group = svgElement("g", { class: "series", "data-series": s.name });
    const points = s.values.map((value, i) => `${x(i).toFixed(1)},${y(value).toFixed(1)}`).join(" ");
    group.append(svgElement("polyline", { points, stroke: colour }));
    s.values.forEach((value, i) => {
      const dot = svgElement("circle", { cx: x(i), cy: y(value), r: 3, fill: colour, "data-day": days[i], "data-value": value });
      dot.append(svgElement("title", {}, `${s.name} ${days[i]}: ${usd(value)}`));
      group.append(dot);
    });
    svg.append(group);
    const item = element("li", { "data-series": s.name, style: `--colour: ${colour}` }, s.name);
    item.append(` ${usd(s.values.reduce((a, b) => a + b, 0))}`);
    legend.append(item);
  });
  figure.append(svg, legend);
}

function drawRates(figure, rates) {
  const bars = [
    ["fallback", rates.fallback_rate],
    ["error", rates.error_rate],
    ...["blocked", "redacted", "flagged", "pass"].map((verdict) => [`guardrail ${verdict}`, rates.guardrails[verdict].rate]),
  ];
  const rowHeight = 26;
  const left = 130;
  const barWidth = WIDTH - left - 80;
  const svg = svgElement("svg", { viewBox: `0 0 ${WIDTH} ${bars.length * rowHeight + 8}`, role: "img" });
  bars.forEach(([name, rate], i) => {
    const row = svgElement("g", { class: "rate", "data-series": name, "data-rate": rate });
    const top = 4 + i * rowHeight;
    row.append(svgElement("text", { x: left - 8, y: top + 15, "text-anchor": "end" }, name));
    row.append(svgElement("rect", { x: left, y: top + 3, width: barWidth, height: 16, fill: "#eef0f4" }));
    row.append(svgElement("rect", { x: left, y: top + 3, width: rate * barWidth, height: 16, fill: COLOURS[i % COLOURS.length] }));
    row.append(svgElement("text", { x: left + barWidth + 8, y: top + 15 }, percent(rate)));
    svg.append(row);
  });
  figure.replaceChildren(svg, element("p", {}, `${rates.requests} requests, ${rates.fallbacks} fallbacks, ${rates.errors} errors`));
}

function drawTop(table, top) {
  const body = table.querySelector("tbody");
  body.replaceChildren();
  for (const request of top.requests) {
    const row = element("tr", { "data-trace-id": request.trace_id });
    const model = request.requested_model === request.served_model ? request.served_model : `${request.requested_model} → ${request.served_model}`;
    const cells = [
      [request.time.replace("T", " ").slice(0, 19), ""],
      [label(request.team), ""],
      [label(request.application), ""],
      [model, ""],
      [label(request.route), ""],
      [String(request.input_tokens), "num"],
      [String(request.output_tokens), "num"],
      [usd(request.cost_usd), "num"],
    ];
    for (const [text, cls] of cells) row.append(element("td", cls ? { class: cls } : {}, text));
    const trace = element("td");
    trace.append(element("code", {}, request.trace_id));
    row.append(trace);
    body.append(row);
  }
}

async function load() {
  const since = document.getElementById("range").value;
  const status = document.getElementById("status");
  document.body.dataset.state = "loading";
  status.textContent = "loading";
  status.removeAttribute("data-error");
  try {
    const range = `since=${encodeURIComponent(since)}`;
    const [byTeam, byModel, rates, top] = await Promise.all([
      getJson(`api/v1/usage/cost?by=team&${range}`),
      getJson(`api/v1/usage/cost?by=served_model&${range}`),
      getJson(`api/v1/usage/rates?${range}`),
      getJson(`api/v1/usage/top?limit=20&${range}`),
    ]);
    drawLineChart(document.getElementById("cost-by-team"), byTeam.days, costSeries(byTeam));
    drawLineChart(document.getElementById("cost-by-model"), byModel.days, costSeries(byModel));
    drawRates(document.getElementById("rates"), rates);
    drawTop(document.getElementById("top"), top);
    status.textContent = `${usd(byTeam.total.cost_usd)}, ${byTeam.total.requests} requests, ${byTeam.since} to ${byTeam.until}`;
    document.body.dataset.state = "ready";
  } catch (error) {
    status.textContent = String(error.message || error);
    status.setAttribute("data-error", "");
    document.body.dataset.state = "error";
  }
}

function start() {
  const range = document.getElementById("range");
  const wanted = new URLSearchParams(location.search).get("since");
  if (wanted) {
    if (![...range.options].some((option) => option.value === wanted)) range.append(new Option(wanted, wanted));
    range.value = wanted;
  }
  range.addEventListener("change", load);
  load();
}

start();
