// 3D Pose Factory front-end extension (DESIGN.md §2 web/js/):
//  1. job progress: the server sends "pose_factory.progress" {node, state, done, total, batch_id,
//     estimate} while RequestPoseBatch runs (estimate: the job's size and time, sent before it is submitted); the node draws "state  done/total (pct%)" under its title bar,
//     cleared when the node's "executed" message arrives or the next run starts (RequestPoseBatch
//     has no UI output, so ComfyUI sends it no "executed": its last state stays until then).
//  2. the loaders' batch_id dropdown ("project/batch", every project, newest first, only the
//     batches the loader can load) follows the local index without a page reload: refreshed from
//     GET /pose_factory/loader_batches when a loader is made or a workflow loaded, when a job's
//     "completed" message arrives and when a prompt finishes; the "refresh batches" button first
//     re-lists storage (POST /pose_factory/refresh {}: every project). A loader with no batch yet
//     takes the newest one.
//  3. room for the loaders' grid preview (ComfyUI's own ui.images output, sent again on a cached
//     re-run because the loaders set HAS_INTERMEDIATE_OUTPUT): a new loader is made tall enough.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { LOADER_NODES, setComboValues, toast } from "./common.js";

const REQUEST_NODE = "PoseFactoryRequestPoseBatch";
const PREVIEW_ROOM = 320; // px under a loader's widgets for its preview (scripts/make_workflows.py: the same)
const STATE_COLOURS = {
  queued: "#aaa", rendering: "#7cf", extracting: "#7cf", uploading: "#7cf",
  completed: "#7d7", failed: "#f77", cancelled: "#fb5", refused: "#f77",
};
const LOADER_KIND = { PoseFactoryLoadPoseFromR2: "pose", PoseFactoryDepthNormalLoader: "depth_normal" };
const CURRENT_BATCH = "current batch";

// A node from the id the server reports: "12" at the top level, "5:12" inside subgraph node 5.
function nodeFromExecutionId(id) {
  const parts = String(id).split(":");
  let graph = app.graph;
  let node = null;
  for (const part of parts) {
    node = graph?.getNodeById?.(part) ?? graph?.getNodeById?.(Number(part)) ?? null;
    if (!node) return null;
    graph = node.subgraph;
  }
  return node;
}

function statusText(s) {
  const total = Number(s.total) || 0;
  const done = Number(s.done) || 0;
  let text = String(s.state ?? "");
  if (total > 0) text += `  ${done}/${total} (${Math.round((100 * done) / total)}%)`;
  if (s.batch_id) text += `  ${s.batch_id}`;
  if (s.estimate) text += `  (${s.estimate})`;
  return text;
}

function setStatus(node, status) {
  node.__poseFactoryStatus = status;
  node.setDirtyCanvas?.(true, true);
}

function loaders(graph = app.graph, out = []) {
  for (const n of graph?._nodes ?? graph?.nodes ?? []) {
    if (LOADER_KIND[n.type]) out.push(n);
    if (n.subgraph) loaders(n.subgraph, out);
  }
  return out;
}

// Puts each loader kind's list into every loader of the graph (or only into `only`). A value the
// list lacks (an old workflow's batch, a batch not indexed here) stays, first in its own list. A
// loader with no batch, or a new one still at the default the page loaded with (the newest batch
// then), takes the newest batch now, unless its batch input is linked; a loaded workflow's or a
// user's choice is never replaced.
function applyLoaderLists(lists, only = null) {
  for (const node of only ? [only] : loaders()) {
    const w = node.widgets?.find((x) => x.name === "batch_id");
    const list = lists?.[LOADER_KIND[node.type]];
    if (!w || !Array.isArray(list)) continue;
    const untouched = node.__pfFresh !== undefined && !node.__pfConfigured && w.value === node.__pfFresh;
    // a linked batch input wins over batch_id: that loader's widget is left as it is (its value is
    // part of what ComfyUI compares to reuse the last output)
    const linked = node.inputs?.some((i) => i.name === "batch" && i.link != null);
    if (!linked && (w.value === "" || w.value == null || untouched) && list.length && w.value !== list[0]) {
      w.value = list[0];
      w.callback?.(w.value);
    }
    if (untouched) node.__pfFresh = w.value;
    const values = [...(list.length ? list : [""]), CURRENT_BATCH];
    if (w.value && !values.includes(w.value)) values.unshift(w.value);
    setComboValues(w, values);
    node.setDirtyCanvas?.(true, true);
  }
}

let pending = null;
async function refreshLoaderLists(only = null) {
  if (!only && !loaders().length) return null;
  pending ??= api.fetchApi("/pose_factory/loader_batches").then(async (resp) => {
    const data = await resp.json();
    if (!resp.ok) throw new Error(data?.error ?? `HTTP ${resp.status}`);
    return data;
  }).finally(() => { pending = null; });
  try {
    const lists = await pending;
    applyLoaderLists(lists, only);
    return lists;
  } catch (err) {
    console.warn("[3D Pose Factory] /pose_factory/loader_batches:", err);
    return null;
  }
}

async function refreshBatches(node) {
  let data;
  try {
    const resp = await api.fetchApi("/pose_factory/refresh", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: "{}",
    });
    data = await resp.json();
    if (!resp.ok) throw new Error(data?.error ?? `HTTP ${resp.status}`);
  } catch (err) {
    toast("error", "Refresh batches failed", String(err?.message ?? err));
    return;
  }
  applyLoaderLists(data.loaders);
  const n = (data.loaders?.[LOADER_KIND[node.type]] ?? []).length;
  const projects = (data.projects ?? []).length;
  toast("info", "Batches refreshed", `${n} batch${n === 1 ? "" : "es"} this loader can load, in ${projects} project${projects === 1 ? "" : "s"}`);
}

app.registerExtension({
  name: "PoseFactory.core",

  async setup() {
    api.addEventListener("pose_factory.progress", (e) => {
      const d = e.detail ?? {};
      const node = nodeFromExecutionId(d.node);
      if (node) setStatus(node, d);
      if (d.state === "completed") refreshLoaderLists(); // the new batch is in the local index now
    });
    api.addEventListener("execution_success", () => refreshLoaderLists());
    api.addEventListener("execution_start", () => {
      for (const node of app.graph?._nodes ?? []) if (node.__poseFactoryStatus) setStatus(node, null);
    });
    api.addEventListener("executed", (e) => {
      const node = nodeFromExecutionId(e.detail?.display_node ?? e.detail?.node);
      if (node?.__poseFactoryStatus) setStatus(node, null);
    });
    api.addEventListener("execution_error", (e) => {
      const node = nodeFromExecutionId(e.detail?.node_id);
      if (node?.__poseFactoryStatus) setStatus(node, { ...node.__poseFactoryStatus, state: "failed" });
    });
    api.addEventListener("execution_interrupted", (e) => {
      const node = nodeFromExecutionId(e.detail?.node_id);
      if (node?.__poseFactoryStatus) setStatus(node, { ...node.__poseFactoryStatus, state: "cancelled" });
    });
    window.__poseFactoryLoaded = true;
  },

  async afterConfigureGraph() {
    refreshLoaderLists(); // a loaded or restored workflow's loaders: today's lists, their own values kept
  },

  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name === REQUEST_NODE) {
      const onDrawForeground = nodeType.prototype.onDrawForeground;
      nodeType.prototype.onDrawForeground = function (ctx) {
        const r = onDrawForeground?.apply(this, arguments);
        const s = this.__poseFactoryStatus;
        if (s && !this.flags?.collapsed) {
          ctx.save();
          ctx.font = "12px sans-serif";
          ctx.fillStyle = STATE_COLOURS[s.state] ?? "#ddd";
          ctx.textAlign = "left";
          ctx.fillText(statusText(s), 8, this.size[1] + 16);
          const total = Number(s.total) || 0;
          if (total > 0) {
            const w = Math.max(0, this.size[0] - 16);
            ctx.fillStyle = "#333";
            ctx.fillRect(8, this.size[1] + 22, w, 4);
            ctx.fillStyle = STATE_COLOURS[s.state] ?? "#7cf";
            ctx.fillRect(8, this.size[1] + 22, (w * Math.min(Number(s.done) || 0, total)) / total, 4);
          }
          ctx.restore();
        }
        return r;
      };
    }

    if (LOADER_NODES.includes(nodeData.name)) {
      const onNodeCreated = nodeType.prototype.onNodeCreated;
      nodeType.prototype.onNodeCreated = function () {
        const r = onNodeCreated?.apply(this, arguments);
        const button = this.addWidget("button", "refresh batches", null, () => refreshBatches(this), {
          serialize: false,
        });
        button.serialize = false; // not a value: keeps widgets_values aligned with the inputs
        const batchWidget = this.widgets?.find((x) => x.name === "batch_id");
        if (batchWidget) setComboValues(batchWidget, batchWidget.options.values ?? []); // its own list, before Vue copies the options
        this.__pfFresh = batchWidget?.value; // the page-load default, until a workflow or the user sets one
        refreshLoaderLists(this); // the list as it is now, not as it was when the page loaded
        // Room for the preview grid under the widgets, so it fits the node and the node does not
        // grow over its neighbours when the grid arrives (a saved workflow's size replaces this).
        const [w, h] = this.computeSize?.() ?? this.size;
        this.setSize?.([Math.max(this.size[0], w), Math.max(this.size[1], h + PREVIEW_ROOM)]);
        return r;
      };
      const onConfigure = nodeType.prototype.onConfigure;
      nodeType.prototype.onConfigure = function () {
        this.__pfConfigured = true; // a saved workflow's loader: its batch stays
        return onConfigure?.apply(this, arguments);
      };
    }
  },
});
