// 3D Pose Factory: what our nodes have to say, as toasts, in both renderers.
//  1. an error raised by one of our nodes: ComfyUI's front end (1.49) shows a generic "This node
//     threw an error during execution" toast and keeps the exception's message in the error
//     report beside the traceback; our nodes' messages say what was wrong and what to do ("no
//     person found in the image …: load a photo of one person …"), so the message is shown as it is.
//  2. "pose_factory.notice" {node, severity, title, text} from the server: a node that ran but has
//     a warning (Extract Pose: images of a batch where no person was found, drawn black).
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { toast } from "./common.js";

const OURS = /^PoseFactory/;

function title(nodeId, fallback) {
  const node = app.graph?.getNodeById?.(Number(String(nodeId).split(":").pop()));
  return node?.title || fallback;
}

app.registerExtension({
  name: "PoseFactory.notices",

  async setup() {
    api.addEventListener("execution_error", (e) => {
      const d = e.detail ?? {};
      if (!OURS.test(String(d.node_type ?? ""))) return;
      const message = String(d.exception_message ?? "").trim();
      if (message) toast("error", `${title(d.node_id, d.node_type)}: error`, message);
    });
    api.addEventListener("pose_factory.notice", (e) => {
      const d = e.detail ?? {};
      const severity = ["info", "warn", "error"].includes(d.severity) ? d.severity : "warn";
      const summary = title(d.node, d.title ?? "3D Pose Factory"), detail = String(d.text ?? "");
      const t = app.extensionManager?.toast; // a warning stays as long as an error: it is read, not glanced at
      if (severity !== "info" && t?.add) t.add({ severity, summary, detail, life: 8000 });
      else toast(severity, summary, detail);
    });
  },
});
