// Shared by the pack's front-end modules (ComfyUI loads this file too: it registers nothing).
import { app } from "../../scripts/app.js";

export const LOADER_NODES = ["PoseFactoryLoadPoseFromR2", "PoseFactoryDepthNormalLoader"];

export function toast(severity, summary, detail) {
  const t = app.extensionManager?.toast;
  if (t?.add) t.add({ severity, summary, detail, life: severity === "error" ? 8000 : 3000 });
  else console.warn(`[3D Pose Factory] ${summary}: ${detail}`);
}

// Replaces a combo widget's choices. The Vue node renderer keeps the options object it was given
// (a shallow copy) and re-reads that array when the dropdown opens, so the array is changed in
// place; each widget gets its own array first (the node type's list is shared by its nodes).
export function setComboValues(widget, values) {
  if (!Array.isArray(widget.options.values) || widget.__pfOwnValues !== widget.options.values) {
    widget.options.values = [...values];
    widget.__pfOwnValues = widget.options.values;
    return;
  }
  widget.options.values.splice(0, widget.options.values.length, ...values);
}
