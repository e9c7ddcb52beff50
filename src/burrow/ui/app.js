// The Burrow dashboard: the v1.0 API and its stats, polled every 2 s.
// Everything the API returns is user data: it reaches the page through textContent
// only, never as markup.
"use strict";

const ROOT = new URL("../", location.href); // the server's root, under any proxy prefix
const POLL_MS = 2000;
const HISTORY = 150; // samples kept for the chart: 5 minutes at one every 2 s
const SPAN = 30; // samples the chart spans at least (a minute), until HISTORY are in
const PEEK = "detail=all&match_hidden=true&limit=20";
const TOKEN_KEY = "burrow.token";

const $ = (id) => document.getElementById(id);

const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  role: null, // "reader" | "writer" | "admin" | null (no keys in use)
  account: null,
  queue: null,
  timer: null,
  polls: 0, // which poll loop is the current one: a restart leaves the older to lapse
  previous: new Map(), // key → {t, put, claimed}: the last sample, for rates
  history: new Map(), // key → [{put, claim}]: rates of the last HISTORY samples
};

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(method, path, body) {
  const headers = {};
  if (state.token) headers["X-Auth-Token"] = state.token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(new URL(path, ROOT), {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let data = null;
  if (text && (response.headers.get("content-type") || "").startsWith("application/json")) {
    data = JSON.parse(text);
  }
  if (!response.ok) {
    const why = data && typeof data.error === "string" ? data.error : response.statusText;
    throw new ApiError(response.status, `${response.status}: ${why}`);
  }
  return data;
}

const queuePath = (account, queue) =>
  `v1.0/${encodeURIComponent(account)}/${encodeURIComponent(queue)}`;
const canWrite = () => state.role !== "reader";
const seesAll = () => state.role === "admin" || state.role === null;

function say(text, isError = false) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("error", isError);
}

function failed(error) {
  if (error instanceof ApiError && error.status === 401) {
    signedOut("This token is not accepted: sign in again.");
  } else {
    say(error.message, true);
  }
}

// Rates ----------------------------------------------------------------------------

// Per-second rates of put_total and claimed_total since the key's last sample (null at
// the first, or when the counters went back: the server restarted).
function rates(key, stats, now) {
  const last = state.previous.get(key);
  state.previous.set(key, { t: now, put: stats.put_total, claimed: stats.claimed_total });
  if (!last || now <= last.t) return { put: null, claim: null };
  const seconds = (now - last.t) / 1000;
  const put = (stats.put_total - last.put) / seconds;
  const claim = (stats.claimed_total - last.claimed) / seconds;
  const rate = put >= 0 && claim >= 0 ? { put, claim } : { put: null, claim: null };
  const history = state.history.get(key) || [];
  history.push(rate);
  if (history.length > HISTORY) history.shift();
  state.history.set(key, history);
  return rate;
}

function rate(value) {
  return value === null ? "-" : value < 10 ? value.toFixed(1) : value.toFixed(0);
}

function age(seconds) {
  if (seconds === null || seconds === undefined) return "-";
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  if (seconds < 3600) return `${(seconds / 60).toFixed(1)} min`;
  if (seconds < 86400) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} d`;
}

// Tables ---------------------------------------------------------------------------

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = String(text);
  if (className) td.className = className;
  return td;
}

function linkCell(row, text, onClick) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "link";
  button.textContent = text;
  button.addEventListener("click", onClick);
  row.insertCell().append(button);
}

function statCells(row, stats, r) {
  for (const name of ["messages", "visible", "hidden", "delayed"]) {
    cell(row, stats[name], "number");
  }
  cell(row, age(stats.oldest_age), "number");
  cell(row, rate(r.put), "number");
  cell(row, rate(r.claim), "number");
}

function renderAccounts(accounts, now) {
  const body = $("accounts").tBodies[0];
  body.replaceChildren();
  for (const [name, stats] of Object.entries(accounts)) {
    const row = body.insertRow();
    row.dataset.account = name;
    linkCell(row, name, () => openAccount(name));
    cell(row, stats.queues, "number");
    statCells(row, stats, rates(`a:${name}`, stats, now));
  }
  $("accounts").hidden = false;
}

function renderQueues(queues, now) {
  const body = $("queues").tBodies[0];
  body.replaceChildren();
  for (const [name, stats] of Object.entries(queues)) {
    const row = body.insertRow();
    row.dataset.queue = name;
    if (name === state.queue) row.className = "selected";
    linkCell(row, name, () => openQueue(name));
    statCells(row, stats, rates(`q:${state.account}/${name}`, stats, now));
  }
  $("no-queues").hidden = Object.keys(queues).length > 0;
}

function renderMessages(messages) {
  const body = $("messages").tBodies[0];
  body.replaceChildren();
  for (const message of messages) {
    const row = body.insertRow();
    cell(row, message.id, "id");
    cell(row, message.ttl, "number");
    cell(row, message.hide, "number");
    cell(row, message.base64 ? `(base64) ${message.body}` : message.body, "body");
    const actions = row.insertCell();
    if (canWrite()) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "danger small";
      button.textContent = "Delete";
      button.addEventListener("click", () => deleteMessage(message.id));
      actions.append(button);
    }
  }
  $("messages").hidden = false;
  if (!messages.length) say("No message in this queue.");
}

// The chart: put/s and claim/s of the open queue, newest at the right.
function drawChart() {
  const canvas = $("chart");
  const context = canvas.getContext("2d");
  const { width, height } = canvas;
  const history = state.history.get(`q:${state.account}/${state.queue}`) || [];
  canvas.dataset.samples = String(history.length); // how many rates it has drawn
  const values = history.flatMap((r) => (r.put === null ? [] : [r.put, r.claim]));
  const top = Math.max(1, ...values);
  const span = Math.max(SPAN, history.length);
  const minutes = (span * POLL_MS) / 60000;
  $("chart-scale").textContent = `(top line: ${rate(top)}/s; the last ${minutes} min)`;
  const y = (value) => height - 4 - (value / top) * (height - 8);
  context.clearRect(0, 0, width, height);
  context.strokeStyle = "#dde2e7";
  context.lineWidth = 1;
  for (const level of [0, top / 2, top]) {
    context.beginPath();
    context.moveTo(0, y(level));
    context.lineTo(width, y(level));
    context.stroke();
  }
  const step = width / (span - 1);
  const x = (i) => width - step * (history.length - 1 - i);
  for (const [field, color] of [["put", "#2f6fde"], ["claim", "#e07b20"]]) {
    context.strokeStyle = context.fillStyle = color;
    context.lineWidth = 2;
    context.beginPath();
    history.forEach((r, i) => context.lineTo(x(i), y(r[field] || 0)));
    context.stroke();
    const last = history[history.length - 1];
    if (last) context.fillRect(x(history.length - 1) - 3, y(last[field] || 0) - 3, 6, 6);
  }
}

// Polling --------------------------------------------------------------------------

async function poll(loop) {
  const now = Date.now();
  try {
    if (seesAll()) renderAccounts(await api("GET", "v1.0?detail=stats"), now);
    if (state.account) {
      const path = `v1.0/${encodeURIComponent(state.account)}?detail=stats`;
      renderQueues(await api("GET", path), now);
    }
    if (state.queue) drawChart();
  } catch (error) {
    failed(error);
    if (error instanceof ApiError && error.status === 401) return;
  }
  if (loop === state.polls) state.timer = setTimeout(poll, POLL_MS, loop);
}

function restartPolling() {
  clearTimeout(state.timer);
  poll(++state.polls);
}

// Actions --------------------------------------------------------------------------

function openAccount(name) {
  state.account = name;
  state.queue = null;
  $("account-title").textContent = name;
  $("queues").tBodies[0].replaceChildren();
  $("queues-panel").hidden = false;
  $("queue-panel").hidden = true;
  say("");
  restartPolling();
}

function openQueue(name) {
  state.queue = name;
  $("queue-title").textContent = name;
  $("queue-panel").hidden = false;
  $("messages").hidden = true;
  for (const row of $("queues").tBodies[0].rows) {
    row.classList.toggle("selected", row.dataset.queue === name);
  }
  say("");
  drawChart();
}

async function peek() {
  try {
    renderMessages(await api("GET", `${queuePath(state.account, state.queue)}?${PEEK}`));
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) renderMessages([]);
    else failed(error);
  }
}

async function putMessage(event) {
  event.preventDefault();
  const ttl = $("put-ttl").value;
  const query = ttl === "" ? "" : `?ttl=${encodeURIComponent(ttl)}`;
  try {
    const ids = await api("PUT", `${queuePath(state.account, state.queue)}${query}`, [
      { body: $("put-body").value },
    ]);
    say(`Put message ${ids[0]}.`);
    restartPolling();
  } catch (error) {
    failed(error);
  }
}

async function deleteMessage(id) {
  try {
    await api("DELETE", `${queuePath(state.account, state.queue)}/${encodeURIComponent(id)}`);
    say(`Deleted message ${id}.`);
  } catch (error) {
    failed(error);
  }
  await peek();
}

function confirmed(text) {
  const dialog = $("confirm");
  $("confirm-text").textContent = text;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

async function purge() {
  const { account, queue } = state;
  if (!(await confirmed(`Delete every message of queue ${queue} in account ${account}?`))) {
    return;
  }
  try {
    await api("DELETE", `${queuePath(account, queue)}?match_hidden=true`);
    say(`Purged queue ${queue}.`);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) say(`Queue ${queue} was empty.`);
    else failed(error);
  }
  $("messages").hidden = true;
  restartPolling();
}

// Signing in -----------------------------------------------------------------------

function signedOut(why) {
  clearTimeout(state.timer);
  state.polls += 1;
  state.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  $("main").hidden = true;
  $("token").hidden = false;
  $("sign-in").hidden = false;
  $("sign-out").hidden = true;
  $("who").textContent = "";
  say(why, true);
}

function describe(me) {
  if (me.role === null) return "No authentication on this server: every call is allowed.";
  const accounts = me.accounts.length ? ` for ${me.accounts.join(", ")}` : "";
  return `Key ${me.key}: ${me.role}${accounts}`;
}

async function start() {
  let me;
  try {
    me = await api("GET", "whoami");
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      signedOut(state.token ? "This token is not accepted." : "Enter a token to sign in.");
    } else {
      say(error.message, true);
    }
    return;
  }
  state.role = me.role;
  $("who").textContent = describe(me);
  $("token").hidden = $("sign-in").hidden = state.token !== null || me.role === null;
  $("sign-out").hidden = state.token === null;
  for (const element of document.querySelectorAll(".write")) element.hidden = !canWrite();
  const choices = $("my-accounts");
  choices.replaceChildren();
  for (const name of me.accounts) choices.append(new Option(name));
  $("main").hidden = false;
  say("");
  if (me.accounts.length === 1) openAccount(me.accounts[0]);
  else restartPolling();
}

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  state.token = $("token").value.trim() || null;
  $("token").value = "";
  if (state.token) sessionStorage.setItem(TOKEN_KEY, state.token);
  start();
});
$("sign-out").addEventListener("click", () => signedOut("Signed out."));
$("account-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const name = $("account-name").value.trim();
  if (name) openAccount(name);
});
$("open-queue").addEventListener("submit", (event) => {
  event.preventDefault();
  const name = $("queue-name").value.trim();
  if (name) openQueue(name);
});
$("peek").addEventListener("click", peek);
$("purge").addEventListener("click", purge);
$("put-form").addEventListener("submit", putMessage);
$("confirm-cancel").addEventListener("click", () => $("confirm").close("cancel"));
$("confirm-ok").addEventListener("click", () => $("confirm").close("ok"));
start();
