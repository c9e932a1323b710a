// A movie's detail: timeline with attempts and errors, log tail, story, stills, poster, film; live.
const detail = { id: null, view: null, stream: null, poll: null, media: "", story: "", logTimer: null };
const STAGES = ["story", "images", "video"];

function stageHtml(name, st) {
  if (!st) return "";
  const when = st.started_at ? `started ${esc(ago(st.started_at))}` : "";
  const took = st.duration_seconds != null ? ` · took ${esc(secs(st.duration_seconds))}` : "";
  const backoff = st.ready_at && st.status === "waiting" ? ` · backing off until ${esc(new Date(st.ready_at).toLocaleTimeString())}` : "";
  const err = st.last_error;
  return `<li class="s-${esc(st.status)}" data-stage="${esc(name)}">
    <b>${esc(name)}</b> <span class="s-${esc(st.status)}">${esc(st.status)}</span>
    ${st.status === "pending" ? "" : `<span class="muted small">· attempt ${esc(st.attempt ?? st.attempts)}${st.attempts != null ? ` (${esc(st.attempts)} this run)` : ""}</span>`}
    <div class="bar" role="progressbar" aria-label="${esc(name)} progress" aria-valuenow="${esc(st.progress)}"><i style="width:${Number(st.progress) || 0}%"></i></div>
    <span class="muted small">${when}${took}${backoff}</span>
    ${err ? `<div class="error-box stage-error"><b>${esc(err.code)}</b> on attempt ${esc(err.attempt)}${err.retryable ? " (retryable)" : ""}: ${esc(err.message)}</div>` : ""}
  </li>`;
}

function waiting(v) {
  return v.status === "queued" || v.stages?.[v.current_stage]?.status === "waiting";
}

function factsHtml(v) {
  const pos = v.position ? `#${v.position.position} in ${v.position.queue} (${v.position.ahead} ahead)` : "–";
  const eta = v.eta_finish_seconds != null ? `ready in ~${secs(v.eta_finish_seconds)}` : v.eta?.unknown ? `unknown (${v.eta.unknown.replaceAll("_", " ")})` : "–";
  return `<dl class="facts">
    <dt>Id</dt><dd><code>${esc(v.movie_id)}</code></dd>
    <dt>State</dt><dd class="${stateClass({ ...v, stages: v.stages })}" id="detail-state">${esc(stateText(v))}</dd>
    <dt>Prompt</dt><dd>${esc(v.request?.prompt)}</dd>
    <dt>Style</dt><dd>${esc(v.request?.style)} · ${esc(v.request?.scene_count)} scenes</dd>
    <dt>Priority</dt><dd>${esc(v.priority)}</dd>
    <dt>Place</dt><dd>${esc(pos)}</dd><dt>ETA</dt><dd>${esc(eta)}</dd>
    <dt>Created</dt><dd title="${esc(v.created_at)}">${esc(ago(v.created_at))}</dd>
    ${v.finished_at ? `<dt>Finished</dt><dd title="${esc(v.finished_at)}">${esc(ago(v.finished_at))}</dd>` : ""}
  </dl>`;
}

function actionsHtml(v) {
  const active = !TERMINAL.includes(v.status);
  const pri = ["high", "normal", "low"].map((p) => `<option${p === v.priority ? " selected" : ""}>${p}</option>`).join("");
  return `<div class="row" id="detail-actions">
    ${active ? `<button type="button" data-dcancel>Cancel</button>` : ""}
    ${["failed", "cancelled"].includes(v.status) ? `<button type="button" data-dretry>Retry</button>` : ""}
    <button type="button" data-ddelete>Delete</button>
    ${waiting(v) ? `<label>Priority <select id="detail-priority">${pri}</select></label><button type="button" data-dpriority>Set priority</button>` : ""}
  </div>`;
}

// The webhook: where the final status goes, each attempt's answer or error, delivered or not.
function webhookHtml(v) {
  const w = v.webhook;
  if (!w) return "";
  const tries = Array.isArray(w.attempts) ? w.attempts : [];
  const state = w.delivered ? `<span class="s-succeeded">delivered</span>` : tries.length ? `<span class="s-failed">not delivered yet</span>` : `<span class="muted">not sent yet</span>`;
  return `<h3>Webhook</h3><p class="small" id="webhook-state">${state} · <code>${esc(w.url)}</code></p>
    ${tries.length ? `<ol class="small">${tries.map((a) => `<li>${a.status_code != null ? `HTTP ${esc(a.status_code)}` : `<span class="s-failed">${esc(a.error || "no answer")}</span>`}
      <span class="muted">${esc(ago(a.at))}</span></li>`).join("")}</ol>` : ""}`;
}

function paintDetail(v) {
  detail.view = v;
  if (!detail.storyTitle) $("#detail-title").textContent = `Movie ${short(v.movie_id)}${v.request?.title ? ` · ${v.request.title}` : ""}`;
  const body = $("#detail-body");
  if (!$("#detail-media", body)) {
    body.innerHTML = `<div class="detail-grid">
      <div><div id="detail-facts"></div><div id="detail-acts"></div>
        <h3>Timeline</h3><div id="detail-error"></div><ol class="timeline" id="detail-timeline"></ol>
        <div id="detail-webhook"></div>
        <h3>Job log <button type="button" id="log-refresh" class="small">Refresh</button> <a id="logs-link" hidden target="_blank" rel="noopener">all logs</a></h3><pre class="log" id="detail-log">…</pre></div>
      <div id="detail-media"></div></div>
      <section class="story" id="detail-story"></section>`;
    $("#log-refresh").onclick = loadLog;
  }
  setHtml($("#detail-facts"), factsHtml(v));
  setHtml($("#detail-acts"), actionsHtml(v));
  setHtml($("#detail-error"), v.error ? `<div class="error-box" id="movie-error"><b>${esc(v.status)}</b>: ${esc(v.error.code)} on attempt ${esc(v.error.attempt)}: ${esc(v.error.message)}</div>` : "");
  setHtml($("#detail-timeline"), STAGES.map((s) => stageHtml(s, v.stages?.[s])).join(""));
  setHtml($("#detail-webhook"), webhookHtml(v));
  // In the cloud the logs are in Cloud Logging: the view links there (here, to the logs route).
  const link = $("#logs-link");
  link.hidden = !v.logs_url;
  if (v.logs_url) link.href = v.logs_url;
  paintMedia(v.artifacts || {});
  if (v.artifacts?.story && detail.story !== v.artifacts.story) loadStory(v.artifacts.story);
}

// The media are painted only when their files change, so a playing film is never reset.
function paintMedia(a) {
  const key = JSON.stringify([a.video, a.poster, a.images]);
  if (key === detail.media) return;
  detail.media = key;
  const parts = [];
  if (a.video) parts.push(`<h3>Film</h3><video id="film" controls preload="metadata" playsinline src="${esc(a.video)}"${a.poster ? ` poster="${esc(a.poster)}"` : ""}></video>
    <p class="small"><a href="${esc(a.video)}" download>Download the film</a></p>`);
  if (a.poster) parts.push(`<h3>Poster</h3><img class="poster" id="poster" alt="The film's poster" src="${esc(a.poster)}">`);
  if (a.images?.length) parts.push(`<h3>Stills</h3><div class="stills">${a.images.map((u, i) => `<a href="${esc(u)}" target="_blank" rel="noopener"><img loading="lazy" alt="Scene ${i + 1}" src="${esc(u)}"></a>`).join("")}</div>`);
  $("#detail-media").innerHTML = parts.join("") || `<p class="muted">No files yet.</p>`;
}

async function loadStory(url) {
  detail.story = url;
  let s;
  try {
    const res = await fetch(url, { headers: new URL(url, location.href).origin === location.origin ? headers() : {} });
    if (!res.ok) throw await errorOf(res);
    s = await res.json();
  } catch (e) { $("#detail-story").innerHTML = `<h3>Story</h3><p class="error-box"></p>`; $("#detail-story p").textContent = `Loading the story failed: ${e.message}`; return; }
  const scenes = Array.isArray(s.scenes) ? s.scenes : [];
  if (s.title && detail.view && !detail.view.request?.title) {
    detail.storyTitle = s.title;
    $("#detail-title").textContent = `Movie ${short(detail.view.movie_id)} · ${s.title}`;
  }
  $("#detail-story").innerHTML = `<h3>Story</h3><p><b id="story-title">${esc(s.title)}</b></p><p class="muted">${esc(s.logline)}</p>
    <ol>${scenes.map((c) => `<li><b>${esc(c.heading)}</b> — ${esc(c.description)}${c.narration ? `<br><i>“${esc(c.narration)}”</i>` : ""}</li>`).join("")}</ol>`;
}

async function loadLog() {
  if (!detail.id) return;
  const id = detail.id;
  let text;
  try { text = await api(`/api/movies/${id}/logs?tail=200`); } catch (e) { text = `(no job log: ${e.message})`; }
  if (detail.id === id) {
    const pre = $("#detail-log");
    pre.textContent = String(text || "(the job log is empty)").split("\n").map(logLine).join("\n");
    pre.scrollTop = pre.scrollHeight;
  }
}
// A JSON log record as one readable line: time, severity, stage and attempt, message, the rest.
function logLine(line) {
  let r;
  try { r = JSON.parse(line); } catch { return line; }
  if (!r || typeof r !== "object" || !r.message) return line;
  const { time, severity, message, stage, attempt, logger, movie_id, ...rest } = r;
  const at = time ? new Date(time).toLocaleTimeString() : "";
  const where = stage ? ` [${stage}${attempt ? ` #${attempt}` : ""}]` : "";
  const more = Object.keys(rest).length ? ` ${JSON.stringify(rest)}` : "";
  return `${at} ${severity || ""}${where} ${message}${more}`;
}
function scheduleLog() { clearTimeout(detail.logTimer); detail.logTimer = setTimeout(loadLog, 700); }

async function refreshDetail() {
  if (!detail.id) return;
  const id = detail.id;
  try { const v = await api(`/api/movies/${id}`); if (detail.id === id) paintDetail(v); } catch (e) {
    if (e.status === 404) { toast(`Movie ${short(id)} is gone.`); $("#detail").close(); } else if (e.status) toast(`Loading ${short(id)} failed: ${e.message}`);
  }
}

async function openDetail(id) {
  closeDetailFeeds();
  detail.id = id; detail.view = null; detail.media = ""; detail.story = ""; detail.storyTitle = "";
  $("#detail-body").innerHTML = `<p class="muted">Loading…</p>`;
  $("#detail-title").textContent = `Movie ${short(id)}`;
  const d = $("#detail");
  if (!d.open) d.showModal();
  history.replaceState(null, "", `#movie/${id}`);
  await refreshDetail();
  loadLog();
  detail.stream = openStream(`/api/movies/${id}/events`, {
    event: (name, v) => { if (name === "movie" && detail.id === id) { paintDetail(v); scheduleLog(); } },
    open: () => {}, lost: () => {},
    done: () => TERMINAL.includes(detail.view?.status),
    missing: () => { detail.poll = setInterval(() => { if (!TERMINAL.includes(detail.view?.status)) { refreshDetail(); scheduleLog(); } }, 2000); },
  });
}

// The page stream's summary of a change: the detail view refetches its own movie (where its
// own stream is missing, the 2 s poll does it too).
function detailChanged(m) {
  if (detail.id !== m.movie_id) return;
  const finished = TERMINAL.includes(detail.view?.status);
  // A movie retried after its own stream ended (at its terminal state): follow it again.
  if (finished && !TERMINAL.includes(m.status)) openDetail(m.movie_id);
  // A finished movie's own stream has ended, and it still changes (its webhook's attempts).
  else if (finished || !detail.stream) refreshDetail();
}

// A media element cannot send the token: where the server refuses it (keys configured), the
// file is fetched with the token and shown from memory instead, once.
document.addEventListener("error", async (e) => {
  const el = e.target;
  if (!["VIDEO", "IMG"].includes(el.tagName) || !token() || el.dataset.authed || !el.src) return;
  if (new URL(el.src).origin !== location.origin) return;
  el.dataset.authed = "1";
  try {
    const res = await fetch(el.src, { headers: headers() });
    if (!res.ok) throw await errorOf(res);
    el.src = URL.createObjectURL(await res.blob());
  } catch (err) { toast(`Loading ${el.tagName === "VIDEO" ? "the film" : "a picture"} failed: ${err.message}`); }
}, true);

function detailDeleted(id) {
  if (detail.id !== id) return;
  toast(`Movie ${short(id)} was deleted.`, "info");
  $("#detail").close();
}

function closeDetailFeeds() {
  if (detail.stream) detail.stream.stop();
  clearInterval(detail.poll); clearTimeout(detail.logTimer);
  detail.stream = null; detail.poll = null;
}

function setupDetail() {
  const d = $("#detail");
  d.addEventListener("close", () => {
    closeDetailFeeds();
    const film = $("#film"); if (film) film.pause();
    detail.id = null; $("#detail-body").innerHTML = "";
    history.replaceState(null, "", location.pathname + location.search);
  });
  d.addEventListener("click", async (e) => {
    const b = e.target.closest("button"), v = detail.view;
    if (!b || !v) return;
    const id = v.movie_id;
    if (b.hasAttribute("data-dcancel")) { if (await movieAction("cancel", id)) refreshDetail(); }
    else if (b.hasAttribute("data-dretry")) { if (await movieAction("retry", id)) { closeDetailFeeds(); openDetail(id); } }
    else if (b.hasAttribute("data-ddelete")) { if (await movieAction("delete", id)) { d.close(); loadList(); } }
    else if (b.hasAttribute("data-dpriority")) {
      const priority = $("#detail-priority").value;
      const r = await act(`Set the priority of ${short(id)}`, () => api(`/api/movies/${id}/priority`, { method: "POST", body: { priority } }));
      if (r.ok) { toast(`Priority of ${short(id)} is ${priority}.`, "info"); paintDetail(r.value); }
    }
  });
}

setupToken();
setupList();
setupDetail();
live.start();
const deep = location.hash.match(/^#movie\/([\w-]+)$/);
if (deep) openDetail(deep[1]);
