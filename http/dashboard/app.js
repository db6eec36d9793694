// jobstore dashboard: plain modern JavaScript, no build step, nothing fetched from elsewhere.
// Views (by URL hash): #/jobs, #/job/<id>, #/inbox, #/schedules, #/overview. One live feed (SSE read with
// fetch, so a bearer token can be sent) drives every view.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const main = $("#main");
// `generation` counts navigations: a view renders into the page only while it is the current
// one (see viewIsCurrent), so a late refresh of the view the user left never replaces the new one.
const state = { head: 0, listeners: new Set(), minutes: new Map(), view: null, generation: 0,
                backfill: Promise.resolve() };

// ---------------------------------------------------------------- API, auth
function token() { return sessionStorage.getItem("jobstore-token"); }

async function askForToken() {
  const dialog = $("#token-dialog");
  if (!dialog.open) dialog.showModal();
  $("#token-input").focus();
  await new Promise((resolve) => dialog.addEventListener("close", resolve, { once: true }));
  sessionStorage.setItem("jobstore-token", $("#token-input").value.trim());
}

async function api(path, { method = "GET", body, signal } = {}) {
  for (;;) {
    const headers = { Accept: "application/json" };
    if (token()) headers.Authorization = `Bearer ${token()}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(`/api/v1${path}`, {
      method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (res.status === 401) { await askForToken(); continue; }
    if (res.status === 204) return null;
    const data = await res.json().catch(() => null);
    if (!res.ok) {
      const err = new Error(data?.error?.message || `HTTP ${res.status}`);
      err.code = data?.error?.code;
      throw err;
    }
    return data;
  }
}

// ---------------------------------------------------------------- the live feed
// Reads /api/v1/events/stream as Server-Sent Events through fetch; reconnects from the last seq.
async function follow() {
  const live = $("#live");
  for (;;) {
    try {
      const headers = { Accept: "text/event-stream" };
      if (token()) headers.Authorization = `Bearer ${token()}`;
      const res = await fetch(`/api/v1/events/stream?after=${state.head}`, { headers });
      if (res.status === 401) { await askForToken(); continue; }
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      live.textContent = "live";
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = frame.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
          if (!data) continue;  // a heartbeat comment
          const event = JSON.parse(data);
          state.head = Math.max(state.head, event.seq);
          countForChart(event);
          for (const fn of state.listeners) fn(event);
        }
      }
    } catch (e) {
      live.textContent = "reconnecting…";
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function onEvent(fn) { state.listeners.add(fn); return () => state.listeners.delete(fn); }

// Calls fn once calls stop coming for `ms`; .cancel() drops a pending call.
function debounce(fn, ms = 250) {
  let timer;
  const debounced = (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
  debounced.cancel = () => clearTimeout(timer);
  return debounced;
}

// A view's refreshes: fn runs on matching events (debounced); the returned function, called
// when the view is left, unsubscribes and drops a refresh still pending.
function refreshOn(fn, ms, matches = () => true) {
  const refresh = debounce(fn, ms);
  const off = onEvent((e) => { if (matches(e)) refresh(); });
  return () => { off(); refresh.cancel(); };
}

// True while the view that started in navigation `generation` is the one on screen.
const viewIsCurrent = (generation) => generation === state.generation;

// ---------------------------------------------------------------- helpers
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c);
  return node;
}
const fmtTime = (t) => (t ? new Date(t).toLocaleString() : "—");
const statusBadge = (s) => el("span", { class: `status status-${s}` }, s);
const pretty = (v) => el("pre", {}, JSON.stringify(v, null, 2));
function jobLink(id) { return el("a", { href: `#/job/${encodeURIComponent(id)}` }, id); }
function progressCell(p) {
  if (!p || p.percent === undefined || p.percent === null) return p?.phase || "—";
  return el("span", {}, el("progress", { max: 100, value: p.percent, "aria-label": `${p.percent}%` }),
            ` ${p.phase || ""}`);
}
function showError(where, err) { where.replaceChildren(el("p", { class: "error", role: "alert" }, err.message)); }

// ---------------------------------------------------------------- jobs list
async function jobsView(params) {
  const generation = state.generation;
  main.replaceChildren($("#jobs-template").content.cloneNode(true));
  const form = $("#filters");
  for (const s of (params.get("status") || "").split(",")) {
    const box = form.querySelector(`input[value="${s}"]`);
    if (box) box.checked = true;
  }
  $("#filter-type").value = params.get("type") || "";
  $("#filter-user").value = params.get("user_id") || "";
  $("#filter-label").value = params.get("label") || "";
  let cursor = params.get("cursor");

  const query = () => {
    const q = new URLSearchParams();
    const statuses = [...form.querySelectorAll("input[name=status]:checked")].map((b) => b.value);
    if (statuses.length) q.set("status", statuses.join(","));
    for (const name of ["type", "user_id", "label"]) {
      const v = form.elements[name].value.trim();
      if (v) q.set(name, v);
    }
    return q;
  };
  const load = async () => {
    const q = query();
    q.set("limit", "50");
    if (cursor) q.set("cursor", cursor);
    try {
      const page = await api(`/jobs?${q}`);
      if (!viewIsCurrent(generation)) return;  // a jobs view with other filters is on screen now
      const rows = page.jobs.map((j) => el("tr", { "data-job": j.job_id },
        el("td", {}, jobLink(j.job_id)), el("td", {}, j.type), el("td", {}, statusBadge(j.status)),
        el("td", {}, j.user_id), el("td", {}, progressCell(j.progress)), el("td", {}, fmtTime(j.updated_at))));
      $("#jobs-table tbody").replaceChildren(...rows);
      $("#jobs-empty").hidden = rows.length > 0;
      $("#next-page").disabled = !page.next_cursor;
      $("#next-page").onclick = () => { cursor = page.next_cursor; load(); };
      $("#first-page").disabled = !cursor;
    } catch (e) { if (viewIsCurrent(generation)) showError($("#jobs-table tbody"), e); }
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    cursor = null;
    location.hash = `#/jobs?${query()}`;
  });
  form.addEventListener("reset", () => setTimeout(() => { cursor = null; location.hash = "#/jobs"; }));
  $("#find").addEventListener("submit", (e) => {
    e.preventDefault();
    const id = $("#find-id").value.trim();
    if (id) location.hash = `#/job/${encodeURIComponent(id)}`;
  });
  $("#first-page").onclick = () => { cursor = null; load(); };
  await load();
  // New jobs and changes appear without a reload (only on the newest page, which they affect).
  return refreshOn(() => { if (!cursor) load(); }, 250);
}

// ---------------------------------------------------------------- one job
async function jobView(id) {
  const generation = state.generation;
  main.replaceChildren(el("p", {}, "Loading…"));
  const render = async () => {
    let job, events;
    try {
      [job, { events }] = await Promise.all([api(`/jobs/${encodeURIComponent(id)}`),
                                             api(`/jobs/${encodeURIComponent(id)}/events`)]);
    } catch (e) { return viewIsCurrent(generation) && showError(main, e); }
    if (!viewIsCurrent(generation)) return;
    const live = !["completed", "failed", "cancelled"].includes(job.status);
    const reason = el("input", { id: "cancel-reason", placeholder: "why (optional)" });
    const cancel = live ? el("form", { class: "find", id: "cancel-form", onsubmit: async (e) => {
      e.preventDefault();
      if (!confirm(`Cancel job ${id}? This cannot be undone.`)) return;
      try { await api(`/jobs/${encodeURIComponent(id)}/cancel`, { method: "POST", body: { reason: reason.value } }); }
      catch (err) { alert(err.message); }
      render();
    } }, el("label", {}, "Reason ", reason), el("button", { class: "danger", type: "submit", id: "cancel-job" }, "Cancel job…")) : null;
    // A failed or cancelled job can be sent back to the queue, with a new attempts budget.
    const retry = ["failed", "cancelled"].includes(job.status) ? el("form", { class: "find", id: "retry-form", onsubmit: async (e) => {
      e.preventDefault();
      if (!confirm(`Retry job ${id}? It waits for a worker again, with a new attempts budget.`)) return;
      try { await api(`/jobs/${encodeURIComponent(id)}/retry`, { method: "POST", body: {} }); }
      catch (err) { alert(err.message); }
      render();
    } }, el("button", { type: "submit", id: "retry-job" }, "Retry job…")) : null;
    main.replaceChildren(el("section", { "aria-labelledby": "job-title" },
      el("h2", { id: "job-title" }, "Job ", el("code", {}, job.job_id), " ", statusBadge(job.status)),
      el("div", { class: "grid" },
        el("div", { class: "card" }, el("h3", {}, "Fields"), el("dl", {},
          ...[["type", job.type], ["user", job.user_id], ["description", job.description || "—"],
              ["version", job.version], ["worker", job.worker || "—"], ["attempt", `${job.attempt} of ${job.max_attempts}`],
              ["priority", job.priority], ["runs at", fmtTime(job.run_at)],
              ["retry", job.retry ? `${job.retry.backoff}, ${job.retry.initial_seconds}s..${job.retry.max_seconds}s` : "—"],
              ["lease until", fmtTime(job.lease_expires_at)], ["created", fmtTime(job.created_at)],
              ["started", fmtTime(job.started_at)], ["finished", fmtTime(job.finished_at)],
              ["labels", Object.entries(job.labels).map(([k, v]) => `${k}:${v}`).join(", ") || "—"],
             ].flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v))])),
          el("p", {}, "Progress: ", progressCell(job.progress)), cancel, retry),
        el("div", { class: "card" }, el("h3", {}, "Input"), pretty(job.input)),
        el("div", { class: "card" }, el("h3", {}, "Data"), pretty(job.data)),
        el("div", { class: "card" }, el("h3", {}, "Result"), pretty(job.result)),
        job.error ? el("div", { class: "card" }, el("h3", {}, "Error"), pretty(job.error)) : null,
        job.errors.length ? el("div", { class: "card" }, el("h3", {}, "Errors by attempt"), pretty(job.errors)) : null,
        job.hitl ? el("div", { class: "card" }, el("h3", {}, `Human in the loop (${job.hitl.request_id})`), pretty(job.hitl),
                      job.status === "pending_hitl" ? el("p", {}, el("a", { href: "#/inbox" }, "Answer in the inbox")) : null) : null),
      el("h3", {}, "Timeline"),
      el("div", { class: "table-wrap" }, el("table", { id: "timeline" },
        el("thead", {}, el("tr", {}, ...["Time", "Seq", "Version", "Event", "What changed"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, ...events.map((e) => el("tr", {},
          el("td", {}, fmtTime(e.at)), el("td", {}, e.seq), el("td", {}, e.version), el("td", {}, e.type),
          el("td", {}, el("code", {}, JSON.stringify(e.data))))))))));
  };
  await render();
  return refreshOn(render, 150, (e) => e.job_id === id);
}

// ---------------------------------------------------------------- HITL inbox
// Renders a prompt's structured questions ({text, question_type: boolean|single|multi|text,
// options: [{id, label, description}]}) as a form; anything else gets a JSON editor.
function questionForm(job) {
  const prompt = job.hitl.prompt;
  const questions = Array.isArray(prompt?.questions) ? prompt.questions : null;
  const key = job.job_id.replace(/[^A-Za-z0-9_-]/g, "_");
  const readers = [];
  const fields = [];
  if (questions) {
    questions.forEach((q, i) => {
      const name = `${key}-q${i}`;
      const kind = q.question_type || (q.options ? "single" : "text");
      const legend = el("legend", {}, q.text || `Question ${i + 1}`);
      if (kind === "boolean") {
        fields.push(el("fieldset", { class: "question" }, legend,
          el("label", {}, el("input", { type: "radio", name, value: "true", required: true }), " Yes"),
          el("label", {}, el("input", { type: "radio", name, value: "false" }), " No")));
        readers.push((form) => form.querySelector(`input[name="${name}"]:checked`)?.value === "true");
      } else if (kind === "single" || kind === "multi") {
        const type = kind === "single" ? "radio" : "checkbox";
        fields.push(el("fieldset", { class: "question" }, legend, ...(q.options || []).map((o, n) =>
          el("div", {}, el("label", {}, el("input", { type, name, value: o.id, required: type === "radio" && n === 0 }), ` ${o.label || o.id}`),
             o.description ? el("div", { class: "option-description" }, o.description) : null))));
        readers.push((form) => {
          const picked = [...form.querySelectorAll(`input[name="${name}"]:checked`)].map((b) => b.value);
          return kind === "single" ? picked[0] ?? null : picked;
        });
      } else {
        const id = `${name}-text`;
        fields.push(el("div", { class: "question" }, el("label", { for: id }, q.text || `Question ${i + 1}`),
                       el("textarea", { id, name, rows: 3, required: true })));
        readers.push((form) => form.querySelector(`#${id}`).value);
      }
    });
  } else {
    const id = `${key}-json`;
    fields.push(el("div", { class: "question" }, el("label", { for: id }, "Response (JSON)"),
                   el("textarea", { id, rows: 5, class: "json" }, "{}")));
    readers.push((form) => JSON.parse(form.querySelector(`#${id}`).value));
  }
  const status = el("p", { role: "status", class: "answer-status" });
  const form = el("form", { class: "card hitl-form", "data-job": job.job_id, onsubmit: async (e) => {
    e.preventDefault();
    let response;
    try {
      const values = readers.map((read) => read(form));
      response = values.length === 1 ? values[0] : values;  // one question: its value; several: a list
    } catch (err) { status.textContent = `Not valid JSON: ${err.message}`; return; }
    try {
      const after = await api(`/jobs/${encodeURIComponent(job.job_id)}/hitl/response`, {
        method: "POST", body: { request_id: job.hitl.request_id, response } });
      status.replaceChildren("Answered — the job is now ", statusBadge(after.status));
      form.querySelector("button[type=submit]").disabled = true;
    } catch (err) { status.textContent = err.message; status.classList.add("error"); }
  } },
    el("h3", {}, jobLink(job.job_id), ` · ${job.type} · ${job.hitl.type} (${job.hitl.request_id})`),
    job.description ? el("p", {}, job.description) : null,
    questions ? null : pretty(prompt),
    ...fields,
    el("button", { type: "submit" }, "Send answer"), status);
  return form;
}

async function inboxView() {
  const list = el("div", { class: "grid", id: "inbox" });
  main.replaceChildren(el("section", { "aria-labelledby": "inbox-title" },
    el("h2", { id: "inbox-title" }, "Questions waiting for a person"), list));
  const load = async () => {
    const { jobs } = await api("/jobs?status=pending_hitl&limit=200");
    const open = new Set(jobs.map((j) => `${j.job_id}/${j.hitl.request_id}`));
    // Keep forms being filled in; add new questions; drop the ones answered elsewhere.
    for (const form of list.querySelectorAll("form")) {
      if (!open.has(form.dataset.key) && !form.querySelector("button[type=submit]").disabled) form.remove();
    }
    for (const j of jobs) {
      const keyOf = `${j.job_id}/${j.hitl.request_id}`;
      if (![...list.querySelectorAll("form")].some((f) => f.dataset.key === keyOf)) {
        const f = questionForm(j);
        f.dataset.key = keyOf;
        list.append(f);
      }
    }
    if (!list.children.length) list.append(el("p", { id: "inbox-empty" }, "Nothing to answer."));
    else $("#inbox-empty")?.remove();
  };
  await load();
  return refreshOn(load, 200,
                   (e) => e.type.startsWith("job.hitl") || e.type === "job.cancelled" || e.type === "job.failed");
}

async function updateInboxCount() {
  try {
    const stats = await api("/stats");
    $("#inbox-count").textContent = stats.jobs.pending_hitl;
  } catch (e) { /* the count waits for the next event */ }
}

// ---------------------------------------------------------------- overview
const minuteOf = (t) => Math.floor(Date.parse(t) / 60000);
function countForChart(e) {
  const kind = { "job.created": "created", "job.completed": "completed", "job.failed": "failed",
                 "job.hitl_timed_out": "failed" }[e.type] || (e.type === "job.lease_expired" && e.data.status === "failed" ? "failed" : null);
  if (!kind) return;
  const m = minuteOf(e.at);
  const bucket = state.minutes.get(m) || { created: 0, completed: 0, failed: 0 };
  bucket[kind] += 1;
  state.minutes.set(m, bucket);
}

// The last hour of the feed: read back from the head in pages (at most 20,000 events).
async function backfillChart() {
  const stats = await api("/stats");
  let after = Math.max(stats.log.first_seq - 1, stats.log.last_seq - 20000);
  const since = Date.now() - 3600 * 1000;
  for (;;) {
    const page = await api(`/events?after=${after}&limit=1000`);
    for (const e of page.events) if (Date.parse(e.at) >= since) countForChart(e);
    if (!page.events.length || page.next_after >= stats.log.last_seq) break;
    after = page.next_after;
  }
  state.head = Math.max(state.head, stats.log.last_seq);
}

function chart() {
  const now = Math.floor(Date.now() / 60000);
  const series = [["created", "#1f5fbf"], ["completed", "#1e7a3c"], ["failed", "#b3261e"]];
  const data = [];
  for (let m = now - 59; m <= now; m++) data.push(state.minutes.get(m) || { created: 0, completed: 0, failed: 0 });
  const max = Math.max(1, ...data.flatMap((d) => series.map(([k]) => d[k])));
  const W = 720, H = 200, slot = W / 60, bar = slot / 4;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H + 20}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("id", "chart");
  svg.setAttribute("aria-label", `Created, completed and failed jobs per minute over the last hour; busiest minute ${max}`);
  data.forEach((d, i) => series.forEach(([k, color], s) => {
    const h = (d[k] / max) * H;
    const r = document.createElementNS(ns, "rect");
    Object.entries({ x: i * slot + s * bar, y: H - h, width: bar, height: h, fill: color }).forEach(([a, v]) => r.setAttribute(a, v));
    const title = document.createElementNS(ns, "title");
    title.textContent = `${60 - i} min ago: ${d[k]} ${k}`;
    r.append(title);
    svg.append(r);
  }));
  const axis = document.createElementNS(ns, "text");
  axis.setAttribute("x", 0); axis.setAttribute("y", H + 16); axis.setAttribute("font-size", 12);
  axis.textContent = "60 min ago → now";
  svg.append(axis);
  return el("figure", { class: "card" }, svg,
    el("figcaption", { class: "legend" }, ...series.map(([k, c]) => el("span", {}, el("i", { style: `background:${c}` }), k))));
}

async function overviewView() {
  const generation = state.generation;
  const render = async () => {
    const stats = await api("/stats");
    if (!viewIsCurrent(generation)) return;
    main.replaceChildren(el("section", { "aria-labelledby": "overview-title" },
      el("h2", { id: "overview-title" }, "Overview"),
      el("div", { class: "counts", id: "counts" }, ...["pending", "scheduled", "running", "pending_hitl", "completed", "failed", "cancelled"].map((s) =>
        el("a", { class: "count", href: `#/jobs?status=${s}`, "data-status": s }, el("strong", {}, stats.jobs[s]), s))),
      el("h3", {}, "Per minute, last hour"), chart(),
      el("p", {}, `Log seq ${stats.log.first_seq}..${stats.log.last_seq}, ${(stats.log.bytes_on_disk / 1048576).toFixed(1)} MiB on disk`)));
  };
  await render();
  // The chart's history arrives after the first render (the backfill reads the last hour of the
  // feed): draw it again once it is in.
  state.backfill.then(() => { if (viewIsCurrent(generation)) render(); });
  return refreshOn(render, 500);
}

// ---------------------------------------------------------------- schedules
async function schedulesView() {
  const generation = state.generation;
  const render = async () => {
    const { schedules } = await api("/schedules");
    if (!viewIsCurrent(generation)) return;
    const rows = schedules.map((s) => el("tr", { "data-schedule": s.schedule_id },
      el("td", {}, el("code", {}, s.schedule_id)), el("td", {}, el("code", {}, s.cron)), el("td", {}, s.timezone),
      el("td", {}, s.job.type || "default"),
      el("td", { class: "next-run" }, s.paused ? "paused" : fmtTime(s.next_run_at)),
      el("td", {}, s.last_job_id ? jobLink(s.last_job_id) : "—", s.last_run_at ? ` (${fmtTime(s.last_run_at)})` : "")));
    main.replaceChildren(el("section", { "aria-labelledby": "schedules-title" },
      el("h2", { id: "schedules-title" }, "Schedules"),
      schedules.length === 0 ? el("p", {}, "No schedules. Create one with POST /api/v1/schedules.") :
      el("div", { class: "table-wrap" }, el("table", { id: "schedules" },
        el("thead", {}, el("tr", {}, ...["Schedule", "Cron", "Time zone", "Job type", "Next run", "Last run"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, ...rows)))));
  };
  await render();
  // A schedule's change or run is an event of "schedule/<id>".
  return refreshOn(render, 300, (e) => e.job_id.startsWith("schedule/"));
}

// ---------------------------------------------------------------- routing
async function route() {
  if (state.view) state.view();  // unsubscribe the previous view
  state.view = null;
  const generation = ++state.generation;
  const [path, query] = location.hash.slice(1).split("?");
  const params = new URLSearchParams(query || "");
  for (const a of document.querySelectorAll("nav a")) {
    a.toggleAttribute("aria-current", path.startsWith(a.getAttribute("href").slice(1)));
    if (a.hasAttribute("aria-current")) a.setAttribute("aria-current", "page");
  }
  let leave = null;
  try {
    if (path.startsWith("/job/")) leave = await jobView(decodeURIComponent(path.slice(5)));
    else if (path === "/inbox") leave = await inboxView();
    else if (path === "/schedules") leave = await schedulesView();
    else if (path === "/overview") leave = await overviewView();
    else leave = await jobsView(params);
  } catch (e) { if (viewIsCurrent(generation)) showError(main, e); }
  if (!viewIsCurrent(generation)) {  // the user moved on while this view loaded
    if (leave) leave();
    return;
  }
  state.view = leave;
  main.focus({ preventScroll: true });
}

(async function start() {
  // The chart's history is read first; the overview draws again when it is in.
  state.backfill = backfillChart().catch(() => { /* the chart fills from the live feed */ });
  window.addEventListener("hashchange", route);
  route();
  onEvent(debounce(updateInboxCount, 300));
  updateInboxCount();
  // The live feed starts at the head the backfill found, so history is not replayed into views.
  await state.backfill;
  follow();
})();
