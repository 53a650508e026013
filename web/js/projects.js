// 3D Pose Factory: one project control per node (issue 21.2).
// A node that stores a batch (Request Pose Batch, Request Mesh From Images, Render Mesh Passes)
// declares `project` as a dropdown of the projects this machine knows plus the configured default
// (its default value: the project the node uses when left alone); the server accepts any other
// name (the nodes name `project` in VALIDATE_INPUTS), so an old workflow's text value or a
// project made after the page loaded still runs. This file adds two actions to that dropdown:
//   "new…"     asks for a name and creates it in storage (POST /pose_factory/projects {name});
//   "rename…"  asks for a new name for the node's project and renames it in storage, every
//              object moved and verified (POST /pose_factory/projects/{name}/rename {to}); every
//              node of the graph that used the old name gets the new one.
// and keeps the list fresh (GET /pose_factory/projects) as nodes are made and workflows loaded;
// the node's own value is always in its list, so the dropdown shows the project it will use.
// The loaders keep a hidden `project` widget for old workflows: there the batch entry
// "project/batch" shows the project (web/js/pose_factory.js), and a bare batch id of an old
// workflow becomes "project/batch" when it loads.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { LOADER_NODES, setComboValues, toast } from "./common.js";

const NEW = "new…";
const RENAME = "rename…";
const ACTIONS = [NEW, RENAME];

async function ask(title, message, defaultValue) {
  const dialog = app.extensionManager?.dialog;
  if (dialog?.prompt) return await dialog.prompt({ title, message, defaultValue });
  return window.prompt(`${title}\n${message}`, defaultValue ?? "");
}

async function call(path, options) {
  const resp = await api.fetchApi(path, options);
  let data = {};
  try {
    data = await resp.json();
  } catch {
    data = { error: `HTTP ${resp.status}` };
  }
  if (!resp.ok) throw new Error(data.error ?? `HTTP ${resp.status}`);
  return data;
}

const post = (path, body) =>
  call(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

function allNodes(graph = app.graph, out = []) {
  for (const n of graph?._nodes ?? graph?.nodes ?? []) {
    out.push(n);
    if (n.subgraph) allNodes(n.subgraph, out);
  }
  return out;
}

function projectWidget(node) {
  const w = node.widgets?.find((x) => x.name === "project");
  return w && w.type === "combo" && !w.hidden && !w.options?.hidden ? w : null;
}

// The server's projects plus the configured default (GET /pose_factory/projects), kept here.
const known = { names: [], default: null };

function setValues(widget) {
  const current = widget.value != null && !ACTIONS.includes(widget.value) ? [String(widget.value)] : [];
  const names = [...new Set([...known.names, ...(known.default ? [known.default] : []), ...current])].sort();
  setComboValues(widget, [...names, ...ACTIONS]); // litegraph and Vue read it when the dropdown opens
}

async function refreshProjects() {
  try {
    const data = await call("/pose_factory/projects");
    known.names = data.projects ?? [];
    known.default = data.default ?? known.default;
  } catch (e) {
    toast("error", "Projects", String(e.message ?? e));
  }
  for (const node of allNodes()) {
    const w = projectWidget(node);
    if (w) setValues(w);
  }
  app.graph?.setDirtyCanvas?.(true, true);
}

async function createProject() {
  const name = await ask("New project", "Lowercase letters, digits, '-' and '_' (1-64 characters).", "");
  if (name == null || String(name).trim() === "") return null;
  try {
    const done = await post("/pose_factory/projects", { name: String(name).trim() });
    toast("success", "Project created", done.project?.name ?? String(name).trim());
    return String(name).trim();
  } catch (e) {
    toast("error", "Project not created", String(e.message ?? e));
    return null;
  }
}

async function renameProject(old) {
  if (!old) {
    toast("error", "Rename", "the node's project is empty");
    return null;
  }
  const to = await ask(`Rename project "${old}"`, "New name (every batch moves with it; batch ids stay).", old);
  if (to == null || String(to).trim() === "" || String(to).trim() === old) return null;
  try {
    const done = await post(`/pose_factory/projects/${encodeURIComponent(old)}/rename`, { to: String(to).trim() });
    toast("success", "Project renamed", `${old} → ${done.to} (${done.objects} objects)`);
    for (const node of allNodes()) { // every node that used the old name follows it
      const w = projectWidget(node);
      if (w && w.value === old) w.value = done.to;
    }
    return done.to;
  } catch (e) {
    toast("error", "Project not renamed", String(e.message ?? e));
    return null;
  }
}

function setup(node) {
  const w = projectWidget(node);
  if (!w || w.__pfProject) return;
  w.__pfProject = true;
  w.__pfLast = ACTIONS.includes(w.value) ? null : w.value;
  setValues(w);
  const callback = w.callback;
  w.callback = function (value, ...rest) {
    if (!ACTIONS.includes(value)) {
      w.__pfLast = value;
      return callback?.call(this, value, ...rest);
    }
    const before = w.__pfLast;
    w.value = before; // never leave an action as the node's project, even for a moment
    (async () => {
      const chosen = value === NEW ? await createProject() : await renameProject(before);
      if (chosen) {
        w.value = chosen;
        w.__pfLast = chosen;
        callback?.call(this, chosen, ...rest);
      }
      await refreshProjects();
      node.setDirtyCanvas?.(true, true);
    })();
    return undefined;
  };
}

// An old loader's bare batch id with its separate project widget -> the one entry "project/batch".
function migrateLoader(node) {
  const project = node.widgets?.find((x) => x.name === "project");
  const batch = node.widgets?.find((x) => x.name === "batch_id");
  if (!project || !batch) return;
  const bid = String(batch.value ?? "");
  if (/^[0-9a-f]{16}$/.test(bid) && String(project.value ?? "").trim()) {
    batch.value = `${String(project.value).trim()}/${bid}`;
    const values = batch.options?.values;
    if (Array.isArray(values) && !values.includes(batch.value)) setComboValues(batch, [batch.value, ...values]);
  }
}

app.registerExtension({
  name: "pose_factory.projects",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!String(nodeData?.name ?? "").startsWith("PoseFactory")) return;
    const inputs = { ...(nodeData.input?.required ?? {}), ...(nodeData.input?.optional ?? {}) };
    if (!("project" in inputs)) return;
    const loader = LOADER_NODES.includes(nodeData.name);
    const onNodeCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const r = onNodeCreated?.apply(this, arguments);
      if (!loader) {
        setup(this);
        refreshProjects();
      }
      return r;
    };
    const onConfigure = nodeType.prototype.onConfigure;
    nodeType.prototype.onConfigure = function () {
      const r = onConfigure?.apply(this, arguments);
      if (loader) migrateLoader(this);
      else {
        const w = projectWidget(this);
        if (w) {
          w.__pfLast = w.value; // a saved workflow's project, in the list even if no batch has it yet
          setValues(w);
        }
      }
      return r;
    };
  },
  async setup() {
    window.__poseFactoryProjectsLoaded = true;
  },
});
