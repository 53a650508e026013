// 3D Pose Factory batch browser (DESIGN.md §2 web/js/): a sidebar tab, registered through the front
// end's app.extensionManager.registerSidebarTab, that lists the projects and batches this machine
// knows (GET /pose_factory/projects, /pose_factory/projects/{project}/batches) with a thumbnail
// (/thumbnail), views x frames, size in pixels, passes and bytes on disk (summed from the batch's
// manifest, fetched when the batch is shown). "Sync" re-lists storage (POST /pose_factory/refresh).
// Clicking a batch puts it into the selected loader nodes (Load Pose Batch, Load Depth / Normal /
// Seg), or into the only loader of the graph: it sets the project widget and the batch widget,
// whichever form that widget's values take ("<batch_id>" or "<project>/<batch_id>").
// Running jobs show their progress at the top, from the "pose_factory.progress" messages
// RequestPoseBatch sends and from GET /pose_factory/jobs when the tab opens; a finished job
// re-lists the batches. The list follows the server's job states: a job's last message says
// completed, failed, cancelled or refused (over the limits or the budget), shown a few seconds
// and then dropped; ComfyUI's own execution_interrupted / execution_error end the jobs of that
// prompt too, and while a job shows as running the tab asks GET /pose_factory/jobs every few
// seconds and drops one the server no longer runs. A running job has a cancel button (ComfyUI's
// interrupt, which cancels the render).
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { LOADER_NODES, toast } from "./common.js";

const TAB_ID = "pose-factory-batches";
const FINAL_STATES = ["completed", "failed", "cancelled", "refused"];
const FINAL_SHOWN_MS = 6000; // a finished job's last state stays this long, then leaves the list
const POLL_MS = 3000;        // GET /pose_factory/jobs while a job shows as running
const GRACE_MS = 4000;       // a job's first message comes before the server lists it
const STYLE = `
.pf-browser { display: flex; flex-direction: column; gap: 8px; padding: 8px; height: 100%; overflow-y: auto;
  font-size: 13px; color: var(--fg-color, #ddd); box-sizing: border-box; }
.pf-browser header { display: flex; align-items: center; gap: 6px; }
.pf-browser header h3 { flex: 1; margin: 0; font-size: 14px; }
.pf-browser button { background: var(--comfy-input-bg, #222); color: inherit; border: 1px solid var(--border-color, #444);
  border-radius: 4px; padding: 2px 8px; cursor: pointer; }
.pf-hint { opacity: 0.7; font-size: 12px; }
.pf-jobs { display: flex; flex-direction: column; gap: 4px; }
.pf-job { border: 1px solid var(--border-color, #444); border-radius: 4px; padding: 4px 6px; }
.pf-bar { height: 4px; background: #333; border-radius: 2px; margin-top: 3px; }
.pf-bar > div { height: 100%; background: #7cf; border-radius: 2px; }
.pf-job.completed .pf-bar > div { background: #7d7; } .pf-job.failed .pf-bar > div { background: #f77; }
.pf-job.refused .pf-bar > div { background: #f77; } .pf-job.cancelled .pf-bar > div { background: #fb5; }
.pf-job .pf-head { display: flex; gap: 6px; align-items: center; } .pf-job .pf-head > div { flex: 1; }
.pf-job .pf-error { font-size: 11px; opacity: 0.85; overflow-wrap: anywhere; }
.pf-project > summary { cursor: pointer; font-weight: 600; padding: 2px 0; }
.pf-batch { display: flex; gap: 8px; padding: 6px; margin: 4px 0; border: 1px solid var(--border-color, #444);
  border-radius: 4px; cursor: pointer; }
.pf-batch:hover { background: var(--comfy-input-bg, #2a2a2a); }
.pf-batch img { width: 96px; height: 96px; object-fit: contain; background: #181818; flex: none; }
.pf-batch .pf-meta { display: flex; flex-direction: column; gap: 2px; min-width: 0; }
.pf-batch code { font-size: 12px; }
.pf-passes { opacity: 0.8; font-size: 11px; overflow-wrap: anywhere; }
`;

// el: the tab's content while it is open; jobsEl / listEl: its two parts, re-drawn separately (a
// progress message re-draws only the jobs, so the thumbnails are not fetched again).
const state = { el: null, jobsEl: null, listEl: null, projects: [], batches: {}, bytes: new Map(), jobs: new Map(),
  rows: new Map(), error: null };

async function getJson(path, options) {
  const resp = await api.fetchApi(path, options);
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(data?.error ?? `HTTP ${resp.status}`);
  return data;
}

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) el.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
  return el;
}

function formatBytes(n) {
  if (!Number.isFinite(n)) return "";
  const units = ["B", "KB", "MB", "GB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i && n < 10 ? 1 : 0)} ${units[i]}`;
}

// --- data -----------------------------------------------------------------------------------------
async function loadBatches(sync = false) {
  try {
    if (sync) await getJson("/pose_factory/refresh", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
    const { projects } = await getJson("/pose_factory/projects");
    const lists = await Promise.all(projects.map((p) =>
      getJson(`/pose_factory/projects/${encodeURIComponent(p)}/batches`)));
    state.projects = projects;
    state.batches = Object.fromEntries(lists.map((l) => [l.project, l.batches]));
    state.error = null;
  } catch (err) {
    state.error = String(err?.message ?? err);
  }
  renderList();
}

const running = (job) => !FINAL_STATES.includes(job.state);

// The server's running jobs: added or updated here; a job shown as running that the server no
// longer runs (and that is past its first seconds) is dropped.
async function loadJobs() {
  try {
    const { jobs } = await getJson("/pose_factory/jobs");
    const live = new Set();
    for (const j of jobs) {
      const key = j.batch_id ?? j.job_id;
      live.add(key);
      state.jobs.set(key, { ...state.jobs.get(key), ...j, seen: Date.now() });
    }
    for (const [key, job] of state.jobs) {
      if (running(job) && !live.has(key) && Date.now() - (job.seen ?? 0) > GRACE_MS) state.jobs.delete(key);
    }
  } catch (err) {
    console.warn("[3D Pose Factory] /pose_factory/jobs:", err);
  }
  renderJobs();
}

let poller = null;
function pollWhileRunning() {
  if (poller || ![...state.jobs.values()].some(running)) return;
  poller = setTimeout(async () => {
    poller = null;
    await loadJobs();
    pollWhileRunning();
  }, POLL_MS);
}

function finish(key, patch) {
  const job = state.jobs.get(key);
  if (!job) return;
  state.jobs.set(key, { ...job, ...patch });
  setTimeout(() => {
    if (state.jobs.get(key)?.state === patch.state) state.jobs.delete(key);
    renderJobs();
  }, FINAL_SHOWN_MS);
}

// ComfyUI ended the prompt: its jobs still shown as running end with it.
function endRunning(stateName, nodeId = null) {
  for (const [key, job] of state.jobs) {
    if (running(job) && (nodeId == null || String(job.node) === String(nodeId))) finish(key, { state: stateName });
  }
  renderJobs();
}

async function batchBytes(project, batchId) {
  const key = `${project}/${batchId}`;
  if (!state.bytes.has(key)) {
    state.bytes.set(key, getJson(`/pose_factory/batches/${encodeURIComponent(project)}/${batchId}/manifest`)
      .then((m) => m.entries.reduce((sum, e) => sum + Object.values(e.files).reduce((s, f) => s + (f.size || 0), 0), 0))
      .catch(() => NaN));
  }
  return state.bytes.get(key);
}

function onProgress(e) {
  const d = e.detail ?? {};
  const key = d.batch_id ?? `node ${d.node}`;
  // a job first known by its node (a mesh job has no batch id until it ends) is the same job
  if (d.batch_id && d.node != null && state.jobs.has(`node ${d.node}`)) {
    state.jobs.set(key, { ...state.jobs.get(`node ${d.node}`), ...state.jobs.get(key) });
    state.jobs.delete(`node ${d.node}`);
  }
  state.jobs.set(key, { ...state.jobs.get(key), ...d, seen: Date.now() });
  if (FINAL_STATES.includes(d.state)) {
    if (d.state === "completed") loadBatches();
    finish(key, { state: d.state });
  }
  renderJobs();
  pollWhileRunning();
}

// --- putting a batch into a loader ----------------------------------------------------------------
function targetLoaders() {
  const selected = Object.values(app.canvas?.selected_nodes ?? {}).filter((n) => LOADER_NODES.includes(n.type));
  if (selected.length) return selected;
  const all = (app.graph?._nodes ?? app.graph?.nodes ?? []).filter((n) => LOADER_NODES.includes(n.type));
  return all.length === 1 ? all : [];
}

function comboValues(widget) {
  const v = widget.options?.values;
  return Array.isArray(v) ? v : typeof v === "function" ? v() ?? [] : [];
}

// The value the batch widget takes for this batch: whichever form its list uses.
function batchWidgetValue(values, project, batchId) {
  const qualified = `${project}/${batchId}`;
  if (values.includes(qualified)) return qualified;
  if (values.includes(batchId)) return batchId;
  return values.some((v) => typeof v === "string" && v.includes("/")) ? qualified : batchId;
}

function setWidget(node, widget, value) {
  const values = widget.options?.values;
  if (Array.isArray(values) && !values.includes(value)) values.unshift(value);
  widget.value = value;
  widget.callback?.(value, app.canvas, node);
}

function putIntoLoaders(project, batchId) {
  const nodes = targetLoaders();
  if (!nodes.length) {
    toast("warn", "No loader selected", "Select a Load Pose Batch or Load Depth / Normal / Seg node, then click the batch.");
    return;
  }
  for (const node of nodes) {
    const projectWidget = node.widgets?.find((w) => w.name === "project");
    const batchWidget = node.widgets?.find((w) => w.name === "batch_id")
      ?? node.widgets?.find((w) => /batch/.test(w.name) && w.type !== "button");
    if (projectWidget) setWidget(node, projectWidget, project);
    if (batchWidget) setWidget(node, batchWidget, batchWidgetValue(comboValues(batchWidget), project, batchId));
    if (node.inputs?.some((i) => i.name === "batch" && i.link != null)) {
      toast("warn", "Batch input linked", `${node.title} loads the batch linked to its batch input; unlink it to load ${batchId}.`);
    }
    node.setDirtyCanvas?.(true, true);
  }
  app.graph?.setDirtyCanvas?.(true, true);
  toast("info", "Batch selected", `${project}/${batchId} → ${nodes.map((n) => `#${n.id} ${n.title}`).join(", ")}`);
}

// --- the tab --------------------------------------------------------------------------------------
// A job's row, made once and then updated in place: progress messages come several times a second,
// and a row rebuilt under the pointer would swallow a click on its cancel button.
function jobRow(key, job) {
  let row = state.rows.get(key);
  if (!row) {
    row = h("div", { class: "pf-job" });
    row.parts = { state: h("div"), hint: h("div", { class: "pf-hint" }), error: h("div", { class: "pf-error" }),
      bar: h("div"), cancel: h("button", { class: "pf-cancel", title: "Cancel the render (ComfyUI's interrupt)",
        onclick: () => api.interrupt?.(null) }, "cancel") };
    row.append(h("div", { class: "pf-head" }, row.parts.state, row.parts.cancel), row.parts.hint, row.parts.error,
      h("div", { class: "pf-bar" }, row.parts.bar));
    state.rows.set(key, row);
  }
  const total = Number(job.total) || 0;
  const done = Math.min(Number(job.done) || 0, total);
  const pct = total ? Math.round((100 * done) / total) : 0;
  row.className = `pf-job ${job.state ?? ""}`;
  row.dataset.batch = job.batch_id ?? "";
  row.dataset.state = job.state ?? "";
  row.parts.state.textContent = `${job.state ?? "queued"}${total ? ` ${done}/${total} (${pct}%)` : ""}`;
  row.parts.hint.textContent = [job.project, job.batch_id].filter(Boolean).join("/") || `node ${job.node}`;
  row.parts.error.textContent = job.error ?? "";
  row.parts.error.hidden = !job.error;
  row.parts.cancel.hidden = !running(job);
  row.parts.bar.style.width = `${pct}%`;
  return row;
}

function batchRow(project, b) {
  const size = h("span", { class: "pf-size" });
  batchBytes(project, b.batch_id).then((n) => { size.textContent = formatBytes(n); });
  return h("div", { class: "pf-batch", "data-project": project, "data-batch": b.batch_id,
    title: "Put this batch into the selected loader", onclick: () => putIntoLoaders(project, b.batch_id) },
  h("img", { src: api.apiURL(b.thumbnail), loading: "lazy", alt: b.batch_id }),
  h("div", { class: "pf-meta" },
    h("code", {}, b.batch_id),
    h("span", {}, `${b.views} view${b.views === 1 ? "" : "s"} × ${b.frames} frame${b.frames === 1 ? "" : "s"}, ${b.width}×${b.height}`),
    size,
    h("span", { class: "pf-hint" }, (b.created_at ?? "").replace("T", " ").slice(0, 16)),
    h("span", { class: "pf-passes" }, (b.passes ?? []).join(", "))));
}

function renderJobs() {
  for (const key of state.rows.keys()) if (!state.jobs.has(key)) state.rows.delete(key);
  if (!state.jobsEl) return;
  const rows = [...state.jobs].map(([key, job]) => jobRow(key, job));
  const now = [...state.jobsEl.children].filter((e) => e.classList.contains("pf-job"));
  if (now.length === rows.length && now.every((e, i) => e === rows[i])) return; // updated in place
  state.jobsEl.replaceChildren(...(rows.length ? [h("b", {}, "Jobs"), ...rows] : []));
}

function renderList() {
  if (!state.listEl) return;
  state.listEl.replaceChildren(
    state.error ? h("div", { class: "pf-job failed" }, state.error) : "",
    !state.error && !state.projects.length ? h("div", { class: "pf-hint" }, "No batches yet: run a Request Pose Batch node.") : "",
    ...state.projects.map((p) => h("details", { class: "pf-project", open: "" },
      h("summary", {}, `${p} (${(state.batches[p] ?? []).length})`),
      (state.batches[p] ?? []).map((b) => batchRow(p, b)))));
}

function mount(container) {
  state.jobsEl = h("section", { class: "pf-jobs" });
  state.listEl = h("section", { class: "pf-list" });
  state.el = h("div", { class: "pf-browser" },
    h("header", {}, h("h3", {}, "Pose batches"),
      h("button", { title: "Re-list the batches in storage", onclick: () => loadBatches(true) }, "Sync")),
    h("div", { class: "pf-hint" }, "Click a batch to put it into the selected loader node."),
    state.jobsEl, state.listEl);
  container.replaceChildren(state.el);
  renderJobs();
  renderList();
}

app.registerExtension({
  name: "PoseFactory.batchBrowser",

  async setup() {
    if (!document.getElementById("pf-browser-style")) {
      document.head.append(h("style", { id: "pf-browser-style" }, STYLE));
    }
    api.addEventListener("pose_factory.progress", onProgress);
    api.addEventListener("execution_interrupted", () => endRunning("cancelled"));
    api.addEventListener("execution_error", (e) => endRunning("failed", e.detail?.node_id));
    api.addEventListener("execution_success", () => setTimeout(loadJobs, 500));
    const register = app.extensionManager?.registerSidebarTab;
    if (!register) {
      console.warn("[3D Pose Factory] this front end has no sidebar tabs: no batch browser");
      return;
    }
    app.extensionManager.registerSidebarTab({
      id: TAB_ID,
      icon: "pi pi-images",
      title: "Pose batches",
      tooltip: "3D Pose Factory: batches and running jobs",
      type: "custom",
      render: (container) => {
        mount(container);
        loadBatches();
        loadJobs();
      },
      destroy: () => { state.el = state.jobsEl = state.listEl = null; },
    });
  },
});
