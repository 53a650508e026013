// 3D Pose Factory: Pose List grows as it is wired (issue 9.5).
// The node declares poses_1 (required) and poses_2 … poses_64 (optional) in Python, so any
// workflow, UI or API, can link as many as it needs. On the canvas it shows only the linked inputs
// plus one empty slot after the last linked one: linking that slot adds the next, unlinking the
// last ones removes the empty slots behind it again (slots in the middle are left as they are, so
// the frame order never shifts under a link).
import { app } from "../../scripts/app.js";

const POSE_LIST = "PoseFactoryPoseList";
const PREFIX = "poses_";
const INPUT = 1; // LiteGraph.INPUT

function slotNumber(input) {
  return input?.name?.startsWith(PREFIX) ? Number(input.name.slice(PREFIX.length)) : NaN;
}

// Keep every linked input and exactly one empty input after the last linked one (at most max).
function fitSlots(node, max, type) {
  const inputs = node.inputs ?? [];
  let last = -1;
  inputs.forEach((input, i) => {
    if (input.link != null && !Number.isNaN(slotNumber(input))) last = i;
  });
  const keep = Math.max(last + 2, 1); // the empty slot after the last linked one
  for (let i = inputs.length - 1; i >= keep; i--) {
    if (inputs[i].link == null && !Number.isNaN(slotNumber(inputs[i]))) node.removeInput(i);
  }
  const count = node.inputs?.length ?? 0;
  const lastNumber = count ? slotNumber(node.inputs[count - 1]) : 0;
  if (count < keep && lastNumber < max) node.addInput(`${PREFIX}${lastNumber + 1}`, type);
  node.setSize?.([node.size[0], node.computeSize()[1]]);
  node.setDirtyCanvas?.(true, true);
}

app.registerExtension({
  name: "PoseFactory.poseList",

  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name !== POSE_LIST) return;
    const optional = Object.keys(nodeData.input?.optional ?? {}).filter((n) => n.startsWith(PREFIX));
    const max = optional.length + 1;
    const type = nodeData.input?.required?.poses_1?.[0] ?? "POSE_FACTORY_POSES";

    const onNodeCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const r = onNodeCreated?.apply(this, arguments);
      fitSlots(this, max, type);
      return r;
    };

    const onConfigure = nodeType.prototype.onConfigure;
    nodeType.prototype.onConfigure = function () {
      const r = onConfigure?.apply(this, arguments);
      queueMicrotask(() => fitSlots(this, max, type)); // after the graph has restored its links
      return r;
    };

    const onConnectionsChange = nodeType.prototype.onConnectionsChange;
    nodeType.prototype.onConnectionsChange = function (side) {
      const r = onConnectionsChange?.apply(this, arguments);
      if (side === INPUT && !app.configuringGraph) fitSlots(this, max, type);
      return r;
    };
  },

  async setup() {
    window.__poseFactoryPoseListLoaded = true;
  },
});
