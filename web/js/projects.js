// 3D Pose Factory: a project picker on every node of the pack that takes a project.
// A dropdown ("projects") under the node's `project` text widget lists the projects this machine
// knows (GET /pose_factory/projects) plus two actions:
//   "new…"     asks for a name and creates it in storage (POST /pose_factory/projects {name});
//   "rename…"  asks for a new name for the node's project and renames it in storage, every
//              object moved and verified (POST /pose_factory/projects/{name}/rename {to}).
// Picking a project writes it into the `project` widget. The dropdown is not saved with the
// workflow (serialize false), so the node's inputs stay those the server declares. A name the
// server refuses comes back with the rule and the slug it would use; it is shown as a toast.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const NEW = "new…";
const RENAME = "rename…";
const PICKER = "projects";

function toast(severity, summary, detail) {
  const t = app.extensionManager?.toast;
  if (t?.add) t.add({ severity, summary, detail, life: severity === "error" ? 10000 : 3000 });
  else console.warn(`[3D Pose Factory] ${summary}: ${detail}`);
}

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

// Every picker shares one list, refreshed from the server; each keeps its own array object
// (litegraph reads options.values at draw time), so the list is copied into each.
const pickers = new Set();

async function refreshProjects() {
  let names = [];
  try {
    names = (await call("/pose_factory/projects")).projects ?? [];
  } catch (e) {
    toast("error", "Projects", String(e.message ?? e));
  }
  for (const w of pickers) {
    const current = w.__projectWidget?.value;
    const values = [...new Set([...(current ? [String(current)] : []), ...names])].sort();
    w.options.values.splice(0, w.options.values.length, ...values, NEW, RENAME);
  }
  app.graph?.setDirtyCanvas?.(true, true);
}

async function createProject(projectWidget) {
  const name = await ask("New project", "Lowercase letters, digits, '-' and '_' (1-64 characters).", "");
  if (name == null || String(name).trim() === "") return;
  try {
    await post("/pose_factory/projects", { name: String(name).trim() });
    projectWidget.value = String(name).trim();
    toast("success", "Project created", projectWidget.value);
  } catch (e) {
    toast("error", "Project not created", String(e.message ?? e));
  }
}

async function renameProject(projectWidget) {
  const old = String(projectWidget.value ?? "").trim();
  if (!old) return toast("error", "Rename", "the node's project is empty");
  const to = await ask(`Rename project "${old}"`, "New name (every batch moves with it; batch ids stay).", old);
  if (to == null || String(to).trim() === "" || String(to).trim() === old) return;
  try {
    const done = await post(`/pose_factory/projects/${encodeURIComponent(old)}/rename`, { to: String(to).trim() });
    projectWidget.value = done.to;
    toast("success", "Project renamed", `${old} → ${done.to} (${done.objects} objects)`);
  } catch (e) {
    toast("error", "Project not renamed", String(e.message ?? e));
  }
}

function addPicker(node) {
  const projectWidget = node.widgets?.find((w) => w.name === "project");
  if (!projectWidget || node.widgets.some((w) => w.name === PICKER)) return;
  const values = [String(projectWidget.value ?? ""), NEW, RENAME];
  const picker = node.addWidget("combo", PICKER, values[0], async (value) => {
    if (value === NEW) await createProject(projectWidget);
    else if (value === RENAME) await renameProject(projectWidget);
    else if (value) projectWidget.value = value;
    picker.value = projectWidget.value;
    await refreshProjects();
  }, { values, serialize: false });
  picker.serialize = false;
  picker.__projectWidget = projectWidget;
  pickers.add(picker);
  const onRemoved = node.onRemoved;
  node.onRemoved = function () {
    pickers.delete(picker);
    return onRemoved?.apply(this, arguments);
  };
}

app.registerExtension({
  name: "pose_factory.projects",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!String(nodeData?.name ?? "").startsWith("PoseFactory")) return;
    const inputs = { ...(nodeData.input?.required ?? {}), ...(nodeData.input?.optional ?? {}) };
    if (!("project" in inputs)) return;
    const onNodeCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const r = onNodeCreated?.apply(this, arguments);
      addPicker(this);
      refreshProjects();
      return r;
    };
  },
});
