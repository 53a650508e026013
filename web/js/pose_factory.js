// 3D Pose Factory front-end extension (DESIGN.md §2 web/js/):
//  1. job progress: the server sends "pose_factory.progress" {node, state, done, total, batch_id,
//     estimate} while RequestPoseBatch runs (estimate: the job's size and time, sent before it is submitted); the node draws "state  done/total (pct%)" under its title bar,
//     cleared when the node's "executed" message arrives or the next run starts (RequestPoseBatch
//     has no UI output, so ComfyUI sends it no "executed": its last state stays until then).
//  2. a "refresh batches" button on the loaders: POST /pose_factory/refresh {project} and put the
//     returned batch ids into the batch_id dropdown, without restarting ComfyUI.
//  3. room for the loaders' grid preview (ComfyUI's own ui.images output, sent again on a cached
//     re-run because the loaders set HAS_INTERMEDIATE_OUTPUT): a new loader is made tall enough.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { LOADER_NODES, toast } from "./common.js";

const REQUEST_NODE = "PoseFactoryRequestPoseBatch";
const PREVIEW_ROOM = 320; // px under a loader's widgets for its preview (scripts/make_workflows.py: the same)
const STATE_COLOURS = {
  queued: "#aaa", rendering: "#7cf", extracting: "#7cf", uploading: "#7cf",
  completed: "#7d7", failed: "#f77", cancelled: "#fb5",
};

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

async function refreshBatches(node) {
  const projectWidget = node.widgets?.find((w) => w.name === "project");
  const batchWidget = node.widgets?.find((w) => w.name === "batch_id");
  if (!batchWidget) return;
  const project = String(projectWidget?.value ?? "").trim();
  let data;
  try {
    const resp = await api.fetchApi("/pose_factory/refresh", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(project ? { project } : {}),
    });
    data = await resp.json();
    if (!resp.ok) throw new Error(data?.error ?? `HTTP ${resp.status}`);
  } catch (err) {
    toast("error", "Refresh batches failed", String(err?.message ?? err));
    return;
  }
  let rows = project ? data.batches?.[project] ?? [] : Object.values(data.batches ?? {}).flat();
  rows = [...rows].sort((a, b) => String(b.created_at ?? "").localeCompare(String(a.created_at ?? "")));
  const ids = [...new Set(rows.map((b) => b.batch_id))];
  batchWidget.options.values = ids.length ? ids : [""];
  if (!batchWidget.options.values.includes(batchWidget.value)) {
    batchWidget.value = batchWidget.options.values[0];
    batchWidget.callback?.(batchWidget.value);
  }
  node.setDirtyCanvas?.(true, true);
  toast("info", "Batches refreshed", `${ids.length} batch${ids.length === 1 ? "" : "es"}${project ? ` in ${project}` : ""}`);
}

app.registerExtension({
  name: "PoseFactory.core",

  async setup() {
    api.addEventListener("pose_factory.progress", (e) => {
      const d = e.detail ?? {};
      const node = nodeFromExecutionId(d.node);
      if (node) setStatus(node, d);
    });
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
        // Room for the preview grid under the widgets, so it fits the node and the node does not
        // grow over its neighbours when the grid arrives (a saved workflow's size replaces this).
        const [w, h] = this.computeSize?.() ?? this.size;
        this.setSize?.([Math.max(this.size[0], w), Math.max(this.size[1], h + PREVIEW_ROOM)]);
        return r;
      };
    }
  },
});
