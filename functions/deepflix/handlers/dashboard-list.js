// The main page: admission, queues, the movie list with filters and paging, bulk actions, dead letters.
const PAGE = 20;
const list = { cursors: [null], page: 0, next: null, rows: new Map() };

function paintQueues(q) {
  const paused = !!q.admission_paused;
  $("#admission").textContent = paused ? "admission paused" : "admitting";
  $("#admission").className = `pill ${paused ? "paused" : "ok"}`;
  $("#admission-toggle").textContent = paused ? "Resume admission" : "Pause admission";
  $("#admission-toggle").dataset.paused = paused ? "1" : "";
  $("#banner-paused").hidden = !paused;
  $("#dead-count").textContent = q.dead_letters ? String(q.dead_letters) : "";
  setHtml($("#queues"), Object.entries(q.queues || {}).map(([stage, s]) => `
    <div class="card${s.paused ? " paused" : ""}" data-stage="${esc(stage)}">
      <h3>${esc(stage)} ${s.paused ? `<span class="badge paused">paused</span>` : ""}</h3>
      <dl><dt>waiting</dt><dd>${s.waiting}</dd><dt>running</dt><dd>${s.running} of ${s.concurrency}</dd>
        <dt>mean</dt><dd>${secs(s.mean_duration_seconds)}</dd></dl>
      <button type="button" data-queue="${esc(stage)}" data-op="${s.paused ? "resume" : "pause"}"
        aria-label="${s.paused ? "Resume" : "Pause"} the ${esc(stage)} queue">${s.paused ? "Resume" : "Pause"} ${esc(stage)}</button>
    </div>`).join(""));
}

async function loadQueues() {
  try { paintQueues(await api("/api/queues")); return true; } catch (e) {
    if (e.status) toast(`Loading the queues failed: ${e.message}`);
    return false;
  }
}

// Where the movie is: the stage, and waiting (with its place) or running (with its progress)
// where the view says; a list summary says only the stage until its status view comes.
function stateText(m) {
  if (TERMINAL.includes(m.status)) return m.status;
  const place = m.position ? ` #${m.position.position}` : "";
  if (m.status === "queued") return `queued for admission${place}`;
  const st = m.stages?.[m.current_stage], sub = m.stage_status || st?.status;
  if (!sub) return `in ${m.current_stage || m.status}`;
  let text = `${m.current_stage} · ${sub}`;
  if (sub === "running" && st?.progress) text += ` ${st.progress}%`;
  if (sub === "waiting") text += place;
  if (sub === "waiting" && st?.ready_at && Date.parse(st.ready_at) > Date.now()) text += " (backing off)";
  return text;
}
function stateClass(m) {
  if (TERMINAL.includes(m.status)) return `s-${m.status}`;
  const sub = m.stage_status || m.stages?.[m.current_stage]?.status;
  return sub ? `s-${sub}` : m.status === "queued" ? "s-queued" : "s-running";
}

function rowHtml(m) {
  const id = esc(m.movie_id), active = !TERMINAL.includes(m.status);
  const title = m.title ? `<b>${esc(m.title)}</b><br>` : "";
  return `<td><button type="button" class="link" data-open="${id}" title="${id}" aria-label="Open movie ${id}">${esc(short(m.movie_id))}</button></td>
    <td class="prompt">${title}${esc((m.prompt || "").slice(0, 140))}</td>
    <td class="${stateClass(m)}" data-state="${esc(m.status)}">${esc(stateText(m))}</td>
    <td>${esc(m.priority)}</td><td class="muted" title="${esc(m.created_at)}">${esc(ago(m.created_at))}</td>
    <td class="actions">${active ? `<button type="button" data-cancel="${id}">Cancel</button>` : ""}
      ${["failed", "cancelled"].includes(m.status) ? `<button type="button" data-retry="${id}">Retry</button>` : ""}
      <button type="button" data-delete="${id}">Delete</button></td>`;
}

function paintRow(m, fromView = false) {
  const tr = list.rows.get(m.movie_id);
  if (!tr) return false;
  setHtml(tr, rowHtml(m));
  tr.dataset.status = m.status;
  if (!fromView && !TERMINAL.includes(m.status)) enrichSoon(m.movie_id);
  return true;
}

// An active row's status view (waiting or running, place, progress): fetched for the rows
// shown whose movie changed, at most once a second each, never for finished ones.
const enrich = { ids: new Set(), timer: null };
function enrichSoon(id) {
  enrich.ids.add(id);
  if (!enrich.timer) enrich.timer = setTimeout(flushEnrich, 800);
}
async function flushEnrich() {
  const ids = [...enrich.ids].filter((id) => list.rows.has(id));
  enrich.ids.clear();
  await Promise.all(ids.map(async (id) => {
    try {
      const v = await api(`/api/movies/${id}`);
      // An event that came while this was asked may have finished the movie: that stands.
      if (TERMINAL.includes(list.rows.get(id)?.dataset.status) && !TERMINAL.includes(v.status)) return;
      paintRow({ ...v, prompt: v.request?.prompt, title: v.request?.title }, true);
    } catch { /* a read: the lost-server banner tells of outages */ }
  }));
  enrich.timer = null;
  if (enrich.ids.size) enrich.timer = setTimeout(flushEnrich, 800);
}

function filters() {
  const f = new FormData($("#filters"));
  return { q: f.get("q").trim(), status: f.get("status"), stage: f.get("stage") };
}

async function loadList() {
  // The operator's page: every owner's movies (a user's token gets 403, and says so).
  const f = filters(), p = new URLSearchParams({ limit: String(PAGE), owner: "all" });
  for (const k of ["status", "stage", "q"]) if (f[k]) p.set(k, f[k]);
  const cursor = list.cursors[list.page];
  if (cursor) p.set("cursor", cursor);
  let page;
  try { page = await api(`/api/movies?${p}`); } catch (e) {
    if (e.status) toast(`Loading the movies failed: ${e.message}`);
    return false;
  }
  const body = $("#movies tbody");
  body.innerHTML = "";
  list.rows.clear();
  for (const m of page.movies) {
    const tr = document.createElement("tr");
    tr.dataset.id = m.movie_id;
    list.rows.set(m.movie_id, tr);
    body.append(tr);
    paintRow(m);
  }
  list.next = page.next_cursor;
  $("#movies-empty").hidden = page.movies.length > 0;
  $("#movies-empty").textContent = f.q || f.status || f.stage ? "No movies match." : "No movies yet: create one above.";
  $("#page-prev").disabled = list.page === 0;
  $("#page-next").disabled = !list.next;
  $("#page-no").textContent = `page ${list.page + 1}`;
  return true;
}

// A change to a movie shown is painted in place; anything else (a new movie, one leaving a
// filter) reloads the page, at most once a second.
let reloadTimer = null;
function scheduleReload() {
  if (reloadTimer) return;
  reloadTimer = setTimeout(() => { reloadTimer = null; loadList(); }, 1000);
}
function onMovieEvent(m) {
  if (m.deleted) {
    const tr = list.rows.get(m.movie_id);
    if (tr) { tr.remove(); list.rows.delete(m.movie_id); scheduleReload(); }
    detailDeleted(m.movie_id);
    return;
  }
  const f = filters(), shown = list.rows.has(m.movie_id);
  if (shown) paintRow(m);
  if ((!shown && list.page === 0) || (shown && (f.status || f.stage))) scheduleReload();
  detailChanged(m);
}

function resetPaging() { list.cursors = [null]; list.page = 0; }

async function movieAction(kind, id) {
  const s = short(id);
  if (kind === "cancel") {
    if (!await confirmAction(`Cancel movie ${s}? A running stage is stopped; you can retry it later.`, "Cancel movie")) return false;
    return (await act(`Cancel ${s}`, () => api(`/api/movies/${id}/cancel`, { method: "POST" }))).ok;
  }
  if (kind === "retry") return (await act(`Retry ${s}`, () => api(`/api/movies/${id}/retry`, { method: "POST" }))).ok;
  if (kind === "delete") {
    if (!await confirmAction(`Delete movie ${s} and all its files? This cannot be undone.`, "Delete movie")) return false;
    const r = await act(`Delete ${s}`, () => api(`/api/movies/${id}`, { method: "DELETE" }));
    if (r.ok) toast(`Deleted ${s}.`, "info");
    return r.ok;
  }
  return false;
}

async function bulkClean(e) {
  e.preventDefault();
  const f = new FormData(e.target), minutes = Number(f.get("minutes") || 0);
  const statuses = String(f.get("statuses")).split(",");
  if (!await confirmAction(`Delete every ${statuses.join(", ")} movie older than ${minutes} min, with its files?`, "Clean")) return;
  const r = await act("Clean", () => api("/api/bulk/clean", { method: "POST", body: { older_than_seconds: Math.round(minutes * 60), statuses } }));
  if (r.ok) { toast(`Cleaned ${r.value.count} movie${r.value.count === 1 ? "" : "s"}.`, "info"); loadList(); }
}

async function bulkRetry() {
  if (!await confirmAction("Retry every failed movie from the stage that failed?", "Retry all")) return;
  const r = await act("Retry all failed", () => api("/api/bulk/retry-failed", { method: "POST" }));
  if (r.ok) { toast(`Retrying ${r.value.count} movie${r.value.count === 1 ? "" : "s"}.`, "info"); loadList(); }
}

async function openDeadLetters() {
  const d = $("#dead");
  if (!d.open) d.showModal();
  let body;
  try { body = await api("/api/dead-letters"); } catch (e) {
    $("#dead-body").innerHTML = `<p class="error-box"></p>`;
    $("#dead-body p").textContent = `Loading the dead letters failed: ${e.message}`;
    return;
  }
  const rows = body.dead_letters || [];
  $("#dead-body").innerHTML = rows.length ? `<div class="table-wrap"><table><thead><tr><th>Id</th><th>Topic</th><th>Movie</th><th>Stage</th><th>Reason</th><th>Failed</th><th></th></tr></thead><tbody>${
    rows.map((r) => `<tr><td title="${esc(r.id)}">${esc(short(r.id))}</td><td>${esc(r.topic)}</td>
      <td>${r.movie_id ? `<button type="button" class="link" data-open="${esc(r.movie_id)}">${esc(short(r.movie_id))}</button>` : "–"}</td>
      <td>${esc(r.stage || "–")}</td><td>${esc(r.reason)}</td><td title="${esc(r.failed_at)}">${esc(ago(r.failed_at))}</td>
      <td><button type="button" data-replay="${esc(r.id)}">Replay</button></td></tr>`).join("")}</tbody></table></div>`
    : `<p class="muted">No dead letters.</p>`;
}

function setupList() {
  $("#create").onsubmit = async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    const body = { prompt: f.get("prompt"), style: f.get("style"), scene_count: Number(f.get("scene_count")), priority: f.get("priority") };
    const r = await act("Create", () => api("/api/movies", { method: "POST", body }));
    if (!r.ok) return;
    e.target.prompt.value = "";
    toast(`Created ${short(r.value.movie_id)}${r.value.admission_paused ? " (admission is paused: it waits)" : ""}.`, "info");
    resetPaging(); loadList();
  };
  $("#admission-toggle").onclick = async () => {
    const op = $("#admission-toggle").dataset.paused ? "resume" : "pause";
    const r = await act(`${op === "pause" ? "Pause" : "Resume"} admission`, () => api(`/api/admission/${op}`, { method: "POST" }));
    if (r.ok) paintQueues(r.value);
  };
  let typing = null;
  $("#filters").oninput = () => { clearTimeout(typing); typing = setTimeout(() => { resetPaging(); loadList(); }, 300); };
  $("#filters").onsubmit = (e) => { e.preventDefault(); resetPaging(); loadList(); };
  $("#page-next").onclick = () => { if (!list.next) return; list.cursors[list.page + 1] = list.next; list.page += 1; loadList(); };
  $("#page-prev").onclick = () => { if (list.page > 0) { list.page -= 1; loadList(); } };
  $("#bulk-clean").onsubmit = bulkClean;
  $("#bulk-retry").onclick = bulkRetry;
  $("#dead-open").onclick = openDeadLetters;
  document.addEventListener("click", async (e) => {
    const b = e.target.closest("button");
    if (!b) return;
    const d = b.dataset;
    if (d.open) { openDetail(d.open); return; }
    if (d.queue) {
      const r = await act(`${d.op === "pause" ? "Pause" : "Resume"} the ${d.queue} queue`, () => api(`/api/queues/${d.queue}/${d.op}`, { method: "POST" }));
      if (r.ok) paintQueues(r.value);
      return;
    }
    if (d.replay) {
      const r = await act(`Replay ${short(d.replay)}`, () => api(`/api/dead-letters/${d.replay}/replay`, { method: "POST" }));
      if (r.ok) { toast(`Replayed ${short(d.replay)}.`, "info"); openDeadLetters(); loadQueues(); }
      return;
    }
    for (const kind of ["cancel", "retry", "delete"]) {
      if (d[kind] && b.closest("#movies") && await movieAction(kind, d[kind])) loadList();
    }
  });
}

const LOST = "Lost the server: the figures below may be stale. Reconnecting…";

// One stream for the whole page; polling every 5 s where the server has no stream route.
const live = {
  stream: null, poll: null,
  start() {
    $("#live").textContent = "connecting…";
    this.stream = openStream("/api/events", {
      event: (name, data) => { if (name === "queues") paintQueues(data); else if (name === "movie") onMovieEvent(data); },
      open: () => { $("#banner-lost").hidden = true; $("#banner-lost").textContent = LOST; $("#live").textContent = "live"; document.body.dataset.live = "stream"; loadQueues(); loadList(); },
      lost: (err) => {
        $("#banner-lost").hidden = false; $("#live").textContent = "reconnecting…";
        // Refused, not lost: the banner says why (a token to set) instead.
        $("#banner-lost").textContent = err && [401, 403, 429].includes(err.status) ? `The live stream was refused: ${err.message}` : LOST;
      },
      missing: () => this.startPolling(),
    });
  },
  startPolling() {
    document.body.dataset.live = "poll";
    $("#live").textContent = "polling every 5 s";
    const tick = async () => {
      const ok = await loadQueues() & await loadList();
      $("#banner-lost").hidden = !!ok;
    };
    tick();
    this.poll = setInterval(tick, 5000);
  },
  restart() { if (this.stream) this.stream.stop(); clearInterval(this.poll); this.start(); },
};
