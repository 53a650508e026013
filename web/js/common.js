// Shared by the pack's front-end modules (ComfyUI loads this file too: it registers nothing).
import { app } from "../../scripts/app.js";

export const LOADER_NODES = ["PoseFactoryLoadPoseFromR2", "PoseFactoryDepthNormalLoader"];

export function toast(severity, summary, detail) {
  const t = app.extensionManager?.toast;
  if (t?.add) t.add({ severity, summary, detail, life: severity === "error" ? 8000 : 3000 });
  else console.warn(`[3D Pose Factory] ${summary}: ${detail}`);
}
