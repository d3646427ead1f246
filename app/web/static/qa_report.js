// The QA monthly report page: the force's table (a row per measure, a column per month),
// its downloads, the charts (SVG drawn by the service, shown inline), calibration and
// whether the alerts changed practice. The months come from the page's own GET form
// (?from=YYYY-MM&to=YYYY-MM), so a report is a URL that can be shared or reloaded.

import { ApiError, api } from "./api.js";
import { $, h, humanise, monthLabel, replaceChildren, setText } from "./dom.js";

const page = $("report-page");
const MONTH = /^\d{4}-\d{2}$/;

function monthOf(d) {
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}`;
}

function range() {
  const params = new URLSearchParams(window.location.search);
  const now = new Date();
  const to = params.get("to") || monthOf(now);
  const from = params.get("from") || monthOf(new Date(now.getFullYear(), now.getMonth() - 5, 1));
  return { from, to };
}

function percent(value) {
  return value === null || value === undefined ? "n/a" : `${value.toFixed(1)}%`;
}

function query(from, to, extra = "") {
  return `from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}${extra}`;
}

function renderTable(report) {
  setText($("report-caption"), `QA results per month, ${monthLabel(report.from)} to ${monthLabel(report.to)}`);
  replaceChildren($("report-head"), h("th", { scope: "col" }, "Measure"),
    report.months.map((m) => h("th", { scope: "col", "data-month": m.month }, monthLabel(m.month))));
  const rows = report.measures.map((measure) => {
    const cells = report.months.map((m) => {
      if (measure.id === "calls_assessed") {
        return h("td", {}, m.calls_assessed === null ? "n/a" : String(m.calls_assessed));
      }
      const cell = m.standards[measure.id];
      return h("td", { title: cell ? `${cell.met} met of ${cell.applicable} applicable; ${cell.not_applicable} not applicable` : "" },
        percent(cell ? cell.percent : null),
        cell ? h("span", { class: "cell-counts" }, ` ${cell.met}/${cell.applicable}`) : null);
    });
    return h("tr", { "data-measure": measure.id }, h("th", { scope: "row" }, measure.label), cells);
  });
  replaceChildren($("report-rows"), rows);
}

function renderCalibration(report) {
  const labels = new Map(report.measures.map((m) => [m.id, m.label]));
  const entries = Object.entries(report.calibration || {});
  replaceChildren($("calibration-rows"), entries.length ? entries.map(([id, a]) => h("tr", {},
    h("th", { scope: "row" }, labels.get(id) || humanise(id)),
    h("td", {}, String(a.pairs)), h("td", {}, String(a.agreed)),
    h("td", {}, percent(a.percent_agreement)),
    h("td", {}, a.kappa === null ? "n/a" : a.kappa.toFixed(2))))
    : h("tr", {}, h("td", { colspan: 5 }, "No call was reviewed more than once.")));
}

const PRACTICE = {
  alerted: "With an alert",
  not_alerted: "Without an alert",
  acknowledged: "Alert acknowledged by the handler",
  not_acknowledged: "Alert not acknowledged",
};

function renderPractice(report) {
  const practice = report.practice;
  if (!practice) {
    setText($("practice-intro"), "The QA form names no practice check.");
    replaceChildren($("practice-rows"));
    return;
  }
  const label = (report.measures.find((m) => m.id === practice.standard) || {}).label || humanise(practice.standard);
  setText($("practice-intro"), `${label} for calls with a ${practice.alert_kinds.map(humanise).join(" or ").toLowerCase()} alert against calls with none.`);
  replaceChildren($("practice-rows"), Object.entries(practice.groups).map(([key, m]) => h("tr", { "data-group": key },
    h("th", { scope: "row" }, PRACTICE[key] || humanise(key)),
    h("td", {}, String(m.met)), h("td", {}, String(m.applicable)), h("td", {}, percent(m.percent)))));
}

async function showChart(name, from, to) {
  const box = $(`chart-${name}`);
  const response = await fetch(`/api/v1/qa/report.svg?${query(from, to, `&chart=${name}`)}`, { credentials: "same-origin" });
  if (!response.ok) {
    replaceChildren(box, h("p", { class: "form-error" }, `The chart could not be drawn (${response.status}).`));
    return;
  }
  // Our own service's SVG, parsed as XML (never as HTML) and adopted: its texts are escaped
  // by the service, and it carries no script (the response's CSP forbids any).
  const doc = new DOMParser().parseFromString(await response.text(), "image/svg+xml");
  if (doc.querySelector("parsererror")) {
    replaceChildren(box, h("p", { class: "form-error" }, "The chart could not be read."));
    return;
  }
  replaceChildren(box, document.importNode(doc.documentElement, true));
}

async function start() {
  const { from, to } = range();
  $("from").value = from;
  $("to").value = to;
  if (!MONTH.test(from) || !MONTH.test(to)) {
    setText($("report-error"), "Choose both months (YYYY-MM).");
    page.dataset.state = "error";
    return;
  }
  $("dl-csv").href = `/api/v1/qa/report?${query(from, to, "&format=csv")}`;
  $("dl-xlsx").href = `/api/v1/qa/report?${query(from, to, "&format=xlsx")}`;
  $("dl-svg-standards").href = `/api/v1/qa/report.svg?${query(from, to, "&chart=standards")}`;
  $("dl-svg-training").href = `/api/v1/qa/report.svg?${query(from, to, "&chart=training")}`;
  try {
    const report = await api("GET", `/api/v1/qa/report?${query(from, to)}`);
    renderTable(report);
    renderCalibration(report);
    renderPractice(report);
    await Promise.all([showChart("standards", from, to), showChart("training", from, to)]);
    page.dataset.state = "ready";
  } catch (err) {
    page.dataset.state = "error";
    const field = err instanceof ApiError && err.details && err.details.field;
    if (field === "from" || field === "to") $(field).setAttribute("aria-invalid", "true");
    setText($("report-error"), `No report: ${err instanceof ApiError ? err.explain() : err.message}`);
    for (const id of ["dl-csv", "dl-xlsx", "dl-svg-standards", "dl-svg-training"]) $(id).removeAttribute("href");
  }
}

start();
