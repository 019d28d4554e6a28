// rnnkit playground: picks a served model and runs its panel through the JSON API only.
// No framework, no build step. Text from the server is always inserted as text, never as HTML.
"use strict";

const state = { models: [], limits: {}, current: null, abort: null };
// measurements the tests read: click-to-first-token of the last generation (ms)
window.rnnkitTiming = {};

const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(message, status) { super(message); this.status = status; }
}

async function errorOf(resp) {
  let detail = `HTTP ${resp.status}`;
  try {
    const data = await resp.json();
    if (data && data.detail) detail = typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail);
  } catch (_) { /* not JSON */ }
  return new ApiError(`${detail} (HTTP ${resp.status})`, resp.status);
}

async function api(path, options = {}) {
  const resp = await fetch(path, options);
  if (!resp.ok) throw await errorOf(resp);
  return resp.json();
}

// fields left empty (null) are left out, so the server uses their defaults
function postJSON(body, signal) {
  const given = Object.fromEntries(Object.entries(body).filter(([, v]) => v !== null && v !== undefined));
  return { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(given), signal };
}

function showError(prefix, err) {
  const el = $(`${prefix}-error`);
  el.textContent = err instanceof Error ? err.message : String(err);
  el.hidden = false;
}

function clearError(prefix) {
  const el = $(`${prefix}-error`);
  el.textContent = "";
  el.hidden = true;
}

// a number field: null when empty (left out of the request: the default), else the number
// (the server validates ranges)
function numberOrNull(id) {
  const raw = $(id).value.trim();
  return raw === "" ? null : Number(raw);
}

function fmt(v) {
  return v === null || v === undefined ? "—" : Number(v).toFixed(4);
}

function cell(tag, text, value) {
  const el = document.createElement(tag);
  el.textContent = text;
  if (value !== undefined) el.dataset.value = String(value);
  return el;
}

function endpoint(action) {
  return `/api/models/${encodeURIComponent(state.current.id)}/${action}`;
}

// runs `work` with the panel's button disabled and its error cleared; errors are shown
async function run(prefix, button, work) {
  clearError(prefix);
  $(button).disabled = true;
  try {
    await work();
  } catch (err) {
    if (err.name !== "AbortError") showError(prefix, err);
  } finally {
    $(button).disabled = false;
  }
}

function checkSize(file) {
  const mb = state.limits.max_upload_mb;
  if (file && mb && file.size > mb * 1048576) {
    throw new ApiError(`${file.name} is ${(file.size / 1048576).toFixed(1)} MiB, more than the server's upload limit of ${mb} MiB; pick a smaller file (or restart the server with a higher --max-upload-mb)`, 413);
  }
  return file;
}

// -- model picker ------------------------------------------------------------------------
async function init() {
  try {
    const data = await api("/api/models");
    state.models = data.models;
    state.limits = data.limits || {};
  } catch (err) {
    $("status").textContent = `cannot list the models: ${err.message}`;
    $("status").hidden = false;
    return;
  }
  const select = $("model");
  select.textContent = "";
  for (const m of state.models) {
    const opt = document.createElement("option");
    opt.value = m.id;
    opt.textContent = `${m.id} — ${m.kind.replace("_", " ")} (${m.name})`;
    select.appendChild(opt);
  }
  select.disabled = false;
  const wanted = new URLSearchParams(location.hash.slice(1)).get("model");
  if (wanted && state.models.some((m) => m.id === wanted)) select.value = wanted;
  select.addEventListener("change", () => choose(select.value));
  choose(select.value);
  document.body.dataset.ready = "true";
}

function choose(id) {
  if (state.abort) state.abort.abort();
  const model = state.models.find((m) => m.id === id);
  state.current = model;
  $("summary").textContent = model.summary;
  for (const panel of document.querySelectorAll(".panel")) panel.hidden = true;
  $(`panel-${model.action}`).hidden = false;
  history.replaceState(null, "", `#model=${encodeURIComponent(id)}`);
  const o = model.options || {};
  if (model.kind === "forecaster") {
    $("fc-levels").placeholder = o.levels && o.levels.length ? o.levels.join(", ") : "none (point forecasts)";
    $("fc-future-label").hidden = !(o.future_columns && o.future_columns.length);
    $("fc-hint").textContent = `${o.horizon} steps ahead from the last ${o.input_len}; a history CSV needs the columns ${(o.history_columns || []).join(", ")}; without one the forecast starts at the end of the training data.`;
  }
}

// -- generate: streamed token by token ----------------------------------------------------
async function generate(ev) {
  ev.preventDefault();
  const t0 = ev.timeStamp || performance.now();
  const controller = new AbortController();
  state.abort = controller;
  const out = $("gen-text");
  out.textContent = "";
  delete out.dataset.done;
  delete window.rnnkitTiming.firstTokenMs;
  const node = document.createTextNode("");
  out.appendChild(node);
  $("gen-prime-echo").textContent = $("gen-prime").value;
  $("gen-info").textContent = "";
  $("gen-stop").disabled = false;
  const body = {
    prime: $("gen-prime").value, length: numberOrNull("gen-length"),
    temperature: numberOrNull("gen-temperature"), top_k: numberOrNull("gen-top-k"),
    top_p: numberOrNull("gen-top-p"), seed: numberOrNull("gen-seed"), stream: true,
  };
  await run("gen", "gen-run", async () => {
    try {
      const resp = await fetch(endpoint("generate"), postJSON(body, controller.signal));
      if (!resp.ok) throw await errorOf(resp);
      const reader = resp.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      let first = true;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let nl;
        while ((nl = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, nl);
          buffer = buffer.slice(nl + 1);
          if (!line.trim()) continue;
          const event = JSON.parse(line);
          if (event.token !== undefined) {
            node.appendData(event.token);
            if (first) {
              first = false;
              window.rnnkitTiming.firstTokenMs = performance.now() - t0;
            }
          } else if (event.done) {
            $("gen-info").textContent = `${event.tokens} tokens in ${event.seconds.toFixed(2)} s; first token after ${window.rnnkitTiming.firstTokenMs.toFixed(0)} ms`;
            out.dataset.done = "true";
          } else if (event.error) {
            throw new ApiError(event.error, 200);
          }
        }
      }
    } finally {
      $("gen-stop").disabled = true;
      state.abort = null;
    }
  });
}

// -- classify: probabilities and per-token attention -------------------------------------
async function classify(ev) {
  ev.preventDefault();
  await run("clf", "clf-run", async () => {
    const r = await api(endpoint("classify"), postJSON({ text: $("clf-text").value }));
    $("clf-label").textContent = r.label;
    const tbody = $("clf-probs").querySelector("tbody");
    tbody.textContent = "";
    for (const c of r.classes) {
      const tr = document.createElement("tr");
      tr.dataset.class = c;
      tr.appendChild(cell("td", c));
      tr.appendChild(cell("td", fmt(r.probabilities[c]), r.probabilities[c]));
      const td = document.createElement("td");
      const meter = document.createElement("meter");
      meter.min = 0; meter.max = 1; meter.value = r.probabilities[c];
      td.appendChild(meter);
      tr.appendChild(td);
      tbody.appendChild(tr);
    }
    const box = $("clf-tokens");
    box.textContent = "";
    if (r.tokens) {
      const top = Math.max(...r.tokens.map((t) => t.weight), 1e-12);
      r.tokens.forEach((t, i) => {
        if (i) box.appendChild(document.createTextNode(" "));
        const span = document.createElement("span");
        span.className = "token";
        span.textContent = t.text;
        span.title = `attention ${t.weight.toFixed(4)}`;
        span.dataset.weight = String(t.weight);
        span.style.backgroundColor = `rgba(255, 140, 0, ${(t.weight / top).toFixed(3)})`;
        box.appendChild(span);
      });
      $("clf-note").textContent = "Attention weight of each token (darker: more weight; hover for the number).";
    } else {
      $("clf-note").textContent = `This model pools with "${r.pooling}", which has no per-token weights; the probabilities are above.`;
    }
    for (const w of r.warnings || []) $("clf-note").textContent += ` ${w}`;
    $("clf-result").hidden = false;
  });
}

// -- translate: text and attention heatmap -----------------------------------------------
async function translate(ev) {
  ev.preventDefault();
  await run("tr", "tr-run", async () => {
    const r = await api(endpoint("translate"), postJSON({ text: $("tr-text").value, beam: numberOrNull("tr-beam") }));
    $("tr-output").textContent = r.translation;
    $("tr-score").textContent = `(${r.score_name} ${r.score.toFixed(4)})`;
    const img = $("tr-heatmap");
    if (r.heatmap_png) {
      img.src = r.heatmap_png;
      img.hidden = false;
    } else {
      img.removeAttribute("src");
      img.hidden = true;
    }
    $("tr-note").textContent = (r.warnings || []).join(" ");
    $("tr-result").hidden = false;
  });
}

// -- forecast: plot and numbers -------------------------------------------------------------
async function forecast(ev) {
  ev.preventDefault();
  await run("fc", "fc-run", async () => {
    const form = new FormData();
    form.append("levels", $("fc-levels").value);
    const history = checkSize($("fc-history").files[0]);
    if (history) form.append("history", history);
    const future = checkSize($("fc-future").files[0]);
    if (future) form.append("future", future);
    const r = await api(endpoint("forecast"), { method: "POST", body: form });
    $("fc-plot").src = r.plot_png;
    const head = $("fc-table").querySelector("thead");
    const body = $("fc-table").querySelector("tbody");
    head.textContent = "";
    body.textContent = "";
    const hr = document.createElement("tr");
    for (const name of ["series", "target", "time", "mean", ...r.levels.flatMap((l) => [`lower ${l}%`, `upper ${l}%`])]) {
      hr.appendChild(cell("th", name));
    }
    head.appendChild(hr);
    for (const f of r.forecasts) {
      f.time.forEach((t, i) => {
        const tr = document.createElement("tr");
        tr.appendChild(cell("td", f.series));
        tr.appendChild(cell("td", f.target));
        tr.appendChild(cell("td", String(t)));
        const mean = cell("td", fmt(f.mean[i]), f.mean[i]);
        mean.className = "mean";
        tr.appendChild(mean);
        for (const l of r.levels) {
          tr.appendChild(cell("td", fmt(f.lower[l][i]), f.lower[l][i]));
          tr.appendChild(cell("td", fmt(f.upper[l][i]), f.upper[l][i]));
        }
        body.appendChild(tr);
      });
    }
    $("fc-result").hidden = false;
  });
}

// -- detect: flagged rows and plot ----------------------------------------------------------
async function detect(ev) {
  ev.preventDefault();
  await run("an", "an-run", async () => {
    const file = checkSize($("an-csv").files[0]);
    if (!file) throw new ApiError("choose a CSV file first", 400);
    const form = new FormData();
    form.append("csv", file);
    form.append("column", $("an-column").value);
    form.append("time", $("an-time").value);
    const r = await api(endpoint("detect"), { method: "POST", body: form });
    $("an-summary").textContent = `${r.flagged.length} of ${r.rows} rows flagged in ${r.columns.join(", ")} (threshold ${fmt(r.threshold)})`;
    $("an-summary").dataset.flagged = String(r.flagged.length);
    $("an-plot").src = r.plot_png;
    const body = $("an-table").querySelector("tbody");
    body.textContent = "";
    for (const row of r.flagged_rows) {
      const tr = document.createElement("tr");
      tr.appendChild(cell("td", String(row.row), row.row));
      tr.appendChild(cell("td", row.time === null ? "—" : String(row.time)));
      tr.appendChild(cell("td", row.values.map(fmt).join(", ")));
      tr.appendChild(cell("td", fmt(row.score), row.score));
      body.appendChild(tr);
    }
    $("an-result").hidden = false;
  });
}

// -- transcribe -----------------------------------------------------------------------------
async function transcribe(ev) {
  ev.preventDefault();
  await run("asr", "asr-run", async () => {
    const file = checkSize($("asr-audio").files[0]);
    if (!file) throw new ApiError("choose a WAV file first", 400);
    const form = new FormData();
    form.append("audio", file);
    form.append("beam", $("asr-beam").value);
    delete $("asr-text").dataset.done;
    const r = await api(endpoint("transcribe"), { method: "POST", body: form });
    $("asr-text").textContent = r.text;
    $("asr-text").dataset.done = "true";
    $("asr-info").textContent = `${r.seconds.toFixed(2)} s of audio; score ${r.score.toFixed(3)}${r.text ? "" : " (nothing recognised)"} ${(r.warnings || []).join(" ")}`;
    $("asr-result").hidden = false;
  });
}

document.addEventListener("DOMContentLoaded", () => {
  $("generate-form").addEventListener("submit", generate);
  $("gen-stop").addEventListener("click", () => state.abort && state.abort.abort());
  $("classify-form").addEventListener("submit", classify);
  $("translate-form").addEventListener("submit", translate);
  $("forecast-form").addEventListener("submit", forecast);
  $("detect-form").addEventListener("submit", detect);
  $("transcribe-form").addEventListener("submit", transcribe);
  init();
});
