// The worklist page: sign in, load a day's ranked discharges from the data API, sort, filter,
// and open one patient's detail. Everything shown is set with textContent (never as HTML).
import { completeSignIn, forget, signIn, signOut, token } from "./auth.js";

const $ = (id) => document.getElementById(id);
const BAND_LABELS = { high: "High", moderate: "Moderate", low: "Low" };
const MESSAGES = {
  401: "Your sign-in is not valid or has expired. Please sign in again.",
  403: "You are signed in, but your account is not in the care team group that may see the worklist. Ask your administrator for access.",
  day_not_found: "There is no worklist for this day: it has not been scored.",
  entry_not_found: "This patient is not on the day's worklist.",
  400: "The request was not valid. Choose a day and filters from the lists.",
  other: "The worklist could not be loaded. Try again in a minute.",
  signin: "Sign-in was not completed. Please sign in again.",
};

const state = { config: null, day: null, data: null, sort: { key: "rank", dir: "ascending" }, opener: null };

class ApiError extends Error {
  constructor(status, code) {
    super(code || String(status));
    this.status = status;
    this.code = code;
  }
}

function say(text) {
  $("status").textContent = text;
}

function fail(error) {
  say("");
  let text = MESSAGES.other;
  if (error instanceof ApiError) {
    text = MESSAGES[error.code] || MESSAGES[error.status] || MESSAGES.other;
    if (error.status === 401) {
      forget();
      showSignedIn(false);
    }
  } else if (error && error.message === "sign-in was not completed") {
    text = MESSAGES.signin;
  }
  $("error").textContent = text;
}

async function api(path, params = {}) {
  const url = new URL(state.config.apiUrl.replace(/\/+$/, "") + path);
  for (const [name, value] of Object.entries(params)) if (value) url.searchParams.set(name, value);
  let response;
  try {
    response = await fetch(url, { headers: { Authorization: token() }, cache: "no-store" });
  } catch {
    throw new ApiError(0, null);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) throw new ApiError(response.status, body && body.error);
  return body;
}

function showSignedIn(signedIn) {
  $("sign-in").hidden = signedIn;
  $("sign-out").hidden = !signedIn;
  $("filters").hidden = !signedIn;
  if (!signedIn) {
    $("worklist").hidden = true;
    $("models").hidden = true;
  }
}

function percent(probability) {
  return `${(probability * 100).toFixed(1)}%`;
}

function shortKey(key) {
  return `${key.slice(0, 12)}…`;
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  row.append(td);
  return td;
}

function bandBadge(band) {
  const span = document.createElement("span");
  span.className = `band band-${band}`;
  span.textContent = BAND_LABELS[band] || band;
  return span;
}

function safeLink(url, text) {
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== "https:" && parsed.protocol !== "http:") return null;
  } catch {
    return null;
  }
  const a = document.createElement("a");
  a.href = url;
  a.textContent = text;
  a.rel = "noopener noreferrer";
  a.target = "_blank";
  return a;
}

function sorted(entries) {
  const { key, dir } = state.sort;
  const sign = dir === "ascending" ? 1 : -1;
  const bandOrder = { high: 0, moderate: 1, low: 2 };
  const value = (entry) => (key === "risk_band" ? bandOrder[entry.risk_band] : entry[key]);
  return [...entries].sort((a, b) => {
    const [x, y] = [value(a), value(b)];
    if (x < y) return -sign;
    if (x > y) return sign;
    return a.rank - b.rank;
  });
}

function budgetLineVisible() {
  const { key, dir } = state.sort;
  return (key === "rank" && dir === "ascending") || (key === "probability" && dir === "descending");
}

function renderModels(data) {
  const section = $("models");
  section.replaceChildren();
  const versions = data.model_versions;
  if (!versions.length) {
    section.hidden = true;
    return;
  }
  const p = document.createElement("p");
  p.append(versions.length > 1 ? "Scored by model versions " : "Scored by model version ");
  versions.forEach((model, index) => {
    if (index) p.append(index === versions.length - 1 ? " and " : ", ");
    const strong = document.createElement("strong");
    strong.textContent = model.version;
    p.append(strong, " (");
    const link = model.model_card_url && safeLink(model.model_card_url, `model card of version ${model.version}`);
    p.append(link || "no model card link", ")");
  });
  p.append(versions.length > 1 ? ": the model changed during this day; each row names its version." : ".");
  section.append(p);
  section.hidden = false;
}

function renderEntries() {
  const data = state.data;
  const tbody = $("entries").querySelector("tbody");
  tbody.replaceChildren();
  const capacity = data.budget.capacity;
  const lineShown = budgetLineVisible();
  const entries = sorted(data.entries);
  entries.forEach((entry, index) => {
    const row = document.createElement("tr");
    row.dataset.key = entry.encounter_key;
    if (entry.within_budget) row.className = "within";
    const rank = cell(row, String(entry.rank), "rank");
    if (entry.within_budget) {
      const mark = document.createElement("span");
      mark.className = "visually-hidden";
      mark.textContent = " (within capacity)";
      rank.append(mark);
    }
    const keyCell = document.createElement("td");
    const open = document.createElement("button");
    open.type = "button";
    open.className = "open-detail";
    open.textContent = shortKey(entry.encounter_key);
    open.setAttribute("aria-label", `Details of encounter ${entry.encounter_key}, rank ${entry.rank}`);
    open.addEventListener("click", () => openDetail(entry.encounter_key, open));
    keyCell.append(open);
    row.append(keyCell);
    cell(row, entry.unit);
    const band = document.createElement("td");
    band.append(bandBadge(entry.risk_band));
    row.append(band);
    cell(row, percent(entry.probability), "number");
    cell(row, entry.factors.slice(0, 3).map((f) => f.label).join("; "));
    cell(row, entry.model_version || "");
    tbody.append(row);
    const next = entries[index + 1];
    if (lineShown && entry.within_budget && (!next || !next.within_budget)) {
      const line = document.createElement("tr");
      line.className = "budget-line";
      const td = document.createElement("td");
      td.colSpan = 7;
      td.textContent = `Team capacity ends here: ${capacity} of ${data.budget.scored} scored discharges (budget ${Math.round(data.budget.share * 100)}%).`;
      line.append(td);
      tbody.append(line);
    }
  });
  for (const th of $("entries").querySelectorAll("th[data-sort]")) {
    if (th.dataset.sort === state.sort.key) th.setAttribute("aria-sort", state.sort.dir);
    else th.removeAttribute("aria-sort");
  }
  $("empty").hidden = data.entries.length > 0;
  $("entries").hidden = data.entries.length === 0;
}

function renderUnscored(data) {
  const rows = data.unscored;
  const tbody = $("unscored").querySelector("tbody");
  tbody.replaceChildren();
  for (const entry of rows) {
    const row = document.createElement("tr");
    const keyCell = document.createElement("td");
    const open = document.createElement("button");
    open.type = "button";
    open.className = "open-detail";
    open.textContent = shortKey(entry.encounter_key);
    open.setAttribute("aria-label", `Details of unscored encounter ${entry.encounter_key}`);
    open.addEventListener("click", () => openDetail(entry.encounter_key, open));
    keyCell.append(open);
    row.append(keyCell);
    cell(row, entry.unit);
    cell(row, entry.failure_reason.replace(/_/g, " "));
    tbody.append(row);
  }
  for (const id of ["unscored", "unscored-heading", "unscored-note"]) $(id).hidden = rows.length === 0;
}

function renderUnits(units, chosen) {
  const select = $("unit");
  const keep = chosen || "";
  select.replaceChildren(new Option("All units", ""), ...units.map((unit) => new Option(unit, unit)));
  select.value = units.includes(keep) ? keep : "";
}

function render(data) {
  state.data = data;
  const budget = data.budget;
  $("caption").textContent = `Discharges of ${data.day}, ranked by risk (highest first)`;
  $("budget").textContent = `${budget.scored} scored, ${budget.failed} not scored. The team can follow up ${budget.capacity} (${Math.round(budget.share * 100)}% of scored discharges).`;
  renderModels(data);
  renderEntries();
  renderUnscored(data);
  $("worklist").hidden = false;
}

async function loadDay() {
  $("error").textContent = "";
  say("Loading the worklist…");
  try {
    const unit = $("unit").value;
    const band = $("band").value;
    const data = await api(`/worklist/days/${encodeURIComponent(state.day)}`, { unit, band });
    renderUnits(data.units, unit);
    render(data);
    say(`Worklist of ${data.day} loaded: ${data.entries.length} ranked, ${data.unscored.length} not scored.`);
  } catch (error) {
    $("worklist").hidden = true;
    $("models").hidden = true;
    fail(error);
  }
}

async function loadDays() {
  say("Loading the scored days…");
  const { days } = await api("/worklist/days");
  const wanted = new URLSearchParams(window.location.hash.slice(1)).get("day");
  const choices = wanted && !days.includes(wanted) ? [wanted, ...days] : days;
  $("day").replaceChildren(...choices.map((day) => new Option(day, day)));
  state.day = wanted || days[0] || null;
  if (state.day) $("day").value = state.day;
}

function detailRow(list, term, value) {
  const dt = document.createElement("dt");
  dt.textContent = term;
  const dd = document.createElement("dd");
  if (value instanceof Node) dd.append(value);
  else dd.textContent = value;
  list.append(dt, dd);
}

async function openDetail(key, opener) {
  state.opener = opener;
  $("error").textContent = "";
  say("Loading the patient's detail…");
  let entry;
  try {
    entry = await api(`/worklist/days/${encodeURIComponent(state.day)}/entries/${encodeURIComponent(key)}`);
  } catch (error) {
    fail(error);
    return;
  }
  const body = $("detail-body");
  body.replaceChildren();
  const list = document.createElement("dl");
  detailRow(list, "Encounter key", entry.encounter_key);
  detailRow(list, "Patient key", entry.patient_key);
  detailRow(list, "Unit", entry.unit);
  if (entry.failure_reason) {
    detailRow(list, "Not scored", entry.failure_reason.replace(/_/g, " "));
  } else {
    detailRow(list, "Rank", `${entry.rank}${entry.within_budget ? " (within the team's capacity)" : ""}`);
    detailRow(list, "Risk band", bandBadge(entry.risk_band));
    detailRow(list, "Probability of readmission in 30 days", percent(entry.probability));
    const models = (state.data && state.data.model_versions) || [];
    const model = models.find((m) => m.version === entry.model_version);
    const link = model && model.model_card_url && safeLink(model.model_card_url, `version ${entry.model_version} (model card)`);
    detailRow(list, "Model", link || entry.model_version || "");
  }
  detailRow(list, "Scored at", entry.scored_at);
  body.append(list);
  if (entry.factors && entry.factors.length) {
    const heading = document.createElement("h3");
    heading.textContent = "What drives this score";
    const factors = document.createElement("ul");
    for (const factor of entry.factors) {
      const item = document.createElement("li");
      const direction = factor.direction === "increases_risk" ? "raises" : "lowers";
      item.textContent = `${factor.label}: ${direction} the risk`;
      factors.append(item);
    }
    body.append(heading, factors);
  }
  const note = document.createElement("p");
  note.className = "note";
  note.textContent = "Keys are de-identified: resolve them to the patient in the hospital's system.";
  body.append(note);
  say("");
  $("detail").showModal();
  $("detail-close").focus();
}

function closeDetail() {
  const dialog = $("detail");
  if (dialog.open) dialog.close();
}

function wire() {
  $("sign-in").addEventListener("click", () => signIn(state.config));
  $("sign-out").addEventListener("click", () => signOut(state.config));
  $("detail-close").addEventListener("click", closeDetail);
  $("detail").addEventListener("close", () => {
    if (state.opener && state.opener.isConnected) state.opener.focus();
  });
  $("filters").addEventListener("submit", (event) => event.preventDefault());
  $("day").addEventListener("change", () => {
    state.day = $("day").value;
    window.location.hash = `day=${state.day}`;
    $("unit").value = "";
    loadDay();
  });
  window.addEventListener("hashchange", () => {
    const day = new URLSearchParams(window.location.hash.slice(1)).get("day");
    if (!day || day === state.day || !token()) return;
    state.day = day;
    if (![...$("day").options].some((o) => o.value === day)) $("day").prepend(new Option(day, day));
    $("day").value = day;
    $("unit").value = "";
    loadDay();
  });
  $("unit").addEventListener("change", loadDay);
  $("band").addEventListener("change", loadDay);
  for (const th of $("entries").querySelectorAll("th[data-sort]")) {
    th.querySelector("button").addEventListener("click", () => {
      const key = th.dataset.sort;
      const same = state.sort.key === key;
      const dir = same ? (state.sort.dir === "ascending" ? "descending" : "ascending") : key === "probability" ? "descending" : "ascending";
      state.sort = { key, dir };
      if (state.data) renderEntries();
      say(`Sorted by ${th.textContent.trim()}, ${dir}.`);
    });
  }
  // Arrow keys move between the rows' detail buttons.
  $("entries").querySelector("tbody").addEventListener("keydown", (event) => {
    if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
    const buttons = [...$("entries").querySelectorAll("tbody .open-detail")];
    const index = buttons.indexOf(document.activeElement);
    if (index < 0) return;
    const next = buttons[index + (event.key === "ArrowDown" ? 1 : -1)];
    if (next) {
      event.preventDefault();
      next.focus();
    }
  });
}

async function start() {
  say("Loading…");
  try {
    const response = await fetch("config.json", { cache: "no-store" });
    state.config = await response.json();
  } catch {
    fail(null);
    return;
  }
  wire();
  try {
    await completeSignIn(state.config);
  } catch (error) {
    fail(error);
  }
  if (!token()) {
    showSignedIn(false);
    say("Sign in to see the worklist.");
    return;
  }
  showSignedIn(true);
  try {
    await loadDays();
  } catch (error) {
    fail(error);
    return;
  }
  if (!state.day) {
    say("No day has been scored yet.");
    return;
  }
  await loadDay();
}

start();
