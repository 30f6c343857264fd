// The invoice page: plain DOM, no framework, no build step, nothing from a CDN.
// Every value from the API is written with textContent (never innerHTML).
"use strict";

const STORE = "invoice-gateway.credential";
const PAGE_SIZE = 10;
const $ = (id) => document.getElementById(id);

const state = { credential: null, cursors: [null], page: 0, next: null };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

async function api(path) {
  let resp;
  try {
    resp = await fetch(path, {
      headers: { Authorization: `Bearer ${state.credential}`, Accept: "application/json" },
      cache: "no-store",
    });
  } catch (err) {
    return { status: 0, body: { detail: "The gateway cannot be reached. Check your connection." } };
  }
  let body = null;
  try {
    body = await resp.json();
  } catch (err) {
    body = { detail: `Unexpected answer (HTTP ${resp.status}).` };
  }
  return { status: resp.status, body, requestId: resp.headers.get("X-Request-ID") };
}

function say(text) {
  $("status").textContent = text;
}

function alertBox(text, partial) {
  const box = $("alert");
  box.replaceChildren();
  if (!text) {
    box.hidden = true;
    return;
  }
  box.className = partial ? "partial" : "";
  if (typeof text === "string") box.textContent = text;
  else box.append(text);
  box.hidden = false;
}

function money(value, currency) {
  if (value === null || value === undefined) return "not stated";
  if (!currency) return `${value} (currency not stated)`;
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(Number(value));
  } catch (err) {
    return `${value} ${currency}`;
  }
}

function query() {
  const params = new URLSearchParams();
  for (const field of $("filters").elements) {
    if (field.name && field.value.trim()) params.set(field.name, field.value.trim());
  }
  return params;
}

function signedIn(credential) {
  state.credential = credential;
  sessionStorage.setItem(STORE, credential);
  $("sign-in").hidden = true;
  $("workspace").hidden = false;
  $("sign-out").hidden = false;
  state.cursors = [null];
  state.page = 0;
  load();
}

function signOut(message) {
  state.credential = null;
  sessionStorage.removeItem(STORE);
  $("workspace").hidden = true;
  $("sign-out").hidden = true;
  $("sign-in").hidden = false;
  $("credential").value = "";
  const note = $("sign-in").querySelector(".sign-in-error");
  if (note) note.remove();
  if (message) {
    $("sign-in-form").prepend(el("p", { class: "sign-in-error", role: "alert", text: message }));
  }
  $("credential").focus();
}

async function load() {
  say("Loading invoices…");
  const params = query();
  const listParams = new URLSearchParams(params);
  listParams.set("limit", String(PAGE_SIZE));
  const cursor = state.cursors[state.page];
  if (cursor) listParams.set("cursor", cursor);
  const summaryParams = new URLSearchParams(params);
  summaryParams.delete("sort");
  const [list, summary] = await Promise.all([
    api(`/v1/invoices?${listParams}`),
    api(`/v1/invoices/summary?${summaryParams}`),
  ]);
  if (list.status === 401) {
    signOut(`Signed out: ${list.body.detail || "the credential was refused"}.`);
    return;
  }
  renderList(list);
  renderSummary(summary);
}

function problemText(result) {
  const detail = result.body && result.body.detail ? result.body.detail : "unknown error";
  const fields = (result.body && result.body.errors) || [];
  const named = fields.map((e) => `${e.field}: ${e.message}`).join("; ");
  const id = result.requestId ? ` (request ${result.requestId})` : "";
  return `${named || detail}${id}`;
}

function renderList(result) {
  const list = $("invoices");
  list.replaceChildren();
  const body = result.body || {};
  renderSources(body.sources || []);
  if (result.status !== 200) {
    state.next = null;
    updatePager();
    const text = result.status === 0 ? body.detail : `Could not load invoices: ${problemText(result)}`;
    alertBox(text, false);
    say("No invoices shown.");
    return;
  }
  if (body.complete === false) {
    const sources = body.sources || [];
    const failed = sources.filter((s) => !["ok", "skipped"].includes(s.status) || s.error);
    const skipped = sources.filter((s) => s.status === "skipped");
    const parts = [];
    if (failed.length) {
      const names = failed.map((s) => `${s.connection} (${s.error ? s.error.type : s.status})`);
      parts.push(`not every source answered: ${names.join(", ")}`);
    }
    if (skipped.length) {
      parts.push(`${skipped.map((s) => s.connection).join(", ")} cannot answer these filters`);
    }
    if (!parts.length) parts.push("some rows could not be read (see Sources)");
    alertBox(`Partial answer: ${parts.join("; ")}.`, true);
  } else {
    alertBox(null);
  }
  for (const inv of body.data) list.append(invoiceItem(inv));
  if (!body.data.length) list.append(el("li", { text: "No invoices match these filters." }));
  state.next = body.next_cursor;
  updatePager();
  say(`Page ${state.page + 1}: ${body.data.length} invoice(s).`);
}

function invoiceItem(inv) {
  const payment = inv.payment || {};
  const boleto = payment.boleto && payment.boleto.digitable_line;
  const title = inv.number ? `Invoice ${inv.number}` : `Invoice ${inv.remote_id}`;
  const period = inv.billing_period
    ? ` · period ${inv.billing_period.start} to ${inv.billing_period.end}`
    : "";
  const due = (inv.due_date ? `Due ${inv.due_date}` : "No due date") + period;
  const actions = el("div", { class: "actions" });
  const pdf = el("button", {
    type: "button",
    class: "secondary pdf",
    text: "Open PDF",
    "aria-label": `Open the PDF of ${title}`,
    onclick: () => openPdf(inv, pdf),
  });
  actions.append(pdf);
  if (boleto) actions.append(copyButton("Copy boleto line", boleto, title));
  if (payment.pix_code) actions.append(copyButton("Copy PIX code", payment.pix_code, title));
  return el(
    "li",
    { class: "invoice", "data-id": inv.id, "data-provider": inv.provider },
    el(
      "div",
      {},
      el("h3", { class: "sr-only", text: title }),
      el("span", { class: "badge", text: inv.provider }),
      " ",
      el("span", { class: `chip ${inv.status}`, text: inv.status }),
      el("div", { text: title }),
      el("div", { class: "meta", text: `${due} · ${inv.connection}` }),
    ),
    el(
      "div",
      { class: "amount" },
      money(inv.amount, inv.currency),
      el("div", { class: "meta", text: `due: ${money(inv.amount_due, inv.currency)}` }),
    ),
    actions,
  );
}

function copyButton(label, value, title) {
  const button = el("button", {
    type: "button",
    class: "secondary",
    text: label,
    "aria-label": `${label} of ${title}`,
  });
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(value);
      say(`${label.replace("Copy ", "")} copied.`);
    } catch (err) {
      window.prompt("Copy this:", value);
    }
  });
  return button;
}

async function openPdf(inv, button) {
  const win = window.open("", "_blank");
  say("Opening the PDF…");
  let resp;
  try {
    resp = await fetch(`/v1/invoices/${encodeURIComponent(inv.id)}/document`, {
      headers: { Authorization: `Bearer ${state.credential}` },
    });
  } catch (err) {
    if (win) win.close();
    say("The PDF could not be fetched: the gateway cannot be reached.");
    return;
  }
  const type = resp.headers.get("Content-Type") || "";
  button.dataset.result = `${resp.status} ${type}`;
  if (resp.status !== 200) {
    if (win) win.close();
    let detail = `HTTP ${resp.status}`;
    try {
      detail = (await resp.json()).detail || detail;
    } catch (err) { /* not a problem body */ }
    say(`No PDF: ${detail}`);
    return;
  }
  const url = URL.createObjectURL(await resp.blob());
  if (win) win.location.href = url;
  else window.location.href = url;
  say("PDF opened in a new tab.");
}

function renderSources(sources) {
  const list = $("sources");
  list.replaceChildren();
  for (const s of sources) {
    const kind = s.error ? s.error.type : s.status;
    const age = s.age_s === null || s.age_s === undefined ? "" : `data ${Math.round(s.age_s)} s old`;
    const parts = [
      el("strong", { text: s.connection }),
      el("span", { class: "badge", text: s.provider }),
      el("span", { class: `chip ${kind}`, text: s.status }),
      el("span", { class: "meta", text: [age, s.from_cache ? "from cache" : ""].filter(Boolean).join(", ") }),
    ];
    if (s.error) parts.push(el("span", { text: s.error.detail }));
    if (s.note) parts.push(el("span", { class: "meta", text: s.note }));
    list.append(el("li", { "data-connection": s.connection, "data-status": s.status }, ...parts));
  }
}

function renderSummary(result) {
  const box = $("summary");
  box.replaceChildren();
  if (result.status !== 200) {
    box.append(el("p", { text: `Summary unavailable: ${problemText(result)}` }));
    return;
  }
  const totals = result.body.totals || [];
  if (!totals.length) {
    box.append(el("p", { text: "Nothing to sum up." }));
    return;
  }
  const grid = el("div", { class: "totals" });
  for (const t of totals) {
    const card = el(
      "div",
      { class: "total" },
      el("h3", { text: t.currency || "Currency not stated" }),
      el("p", { text: `${t.count} invoice(s), total ${money(t.amount, t.currency)}, due ${money(t.amount_due, t.currency)}` }),
    );
    const aging = t.aging || {};
    const buckets = ["0-30", "31-60", "61-90", "90+"];
    const counts = buckets.map((b) => (aging[b] ? aging[b].count : 0));
    const most = Math.max(1, ...counts);
    const bars = el("div", { class: "bars", role: "img",
      "aria-label": `Overdue by days: ${buckets.map((b, i) => `${b}: ${counts[i]}`).join(", ")}` });
    buckets.forEach((b, i) => {
      const fill = el("div", { class: "fill" });
      fill.style.width = `${(100 * counts[i]) / most}%`;
      bars.append(el("div", { class: "bar", "aria-hidden": "true" },
        el("span", { text: `${b} d` }), el("div", {}, fill), el("span", { text: String(counts[i]) })));
    });
    card.append(el("p", { class: "meta", text: "Overdue invoices by days late" }), bars);
    grid.append(card);
  }
  box.append(grid);
}

function updatePager() {
  $("prev").disabled = state.page === 0;
  $("next").disabled = !state.next;
  $("page-label").textContent = `Page ${state.page + 1}`;
}

document.addEventListener("DOMContentLoaded", () => {
  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("credential").value.trim();
    if (value) signedIn(value);
  });
  $("sign-out").addEventListener("click", () => signOut(null));
  $("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    state.cursors = [null];
    state.page = 0;
    load();
  });
  $("next").addEventListener("click", () => {
    if (!state.next) return;
    state.cursors[state.page + 1] = state.next;
    state.page += 1;
    load();
  });
  $("prev").addEventListener("click", () => {
    if (state.page === 0) return;
    state.page -= 1;
    load();
  });
  const saved = sessionStorage.getItem(STORE);
  if (saved) signedIn(saved);
});
