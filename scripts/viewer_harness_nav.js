// The 3D viewer's navigation and graph checks (issue 21, point 8), run by scripts/viewer_harness_check.js
// on the Posing in 3D template, at scale 1, in a real ComfyUI (no render needed):
//   orbit_pivot_is_the_figure_centre   the free view's pivot is the centre of the figure's bounding box
//                                      (three.js Box3 of the drawn mesh), and a mouse drag turns the view
//                                      around it: the centre stays on the same pixel, the eye moves
//   zoom_keeps_the_figure_in_view      40 wheel notches in: the eye stays outside the figure's bounding
//                                      sphere, its centre in the view; 80 out: the figure still >= 5 % tall
//   frame_button_frames_the_figure     after a pan and a zoom out, "frame" (and F with the viewer
//                                      focused) shows the whole box, centred, at least half the view tall
//   ctrl_z_in_viewer_undoes_the_pose   a pose edit, then Ctrl+Z with the viewer focused: the pose is back,
//                                      the graph is the same (same node objects, a node moved before the
//                                      edit still moved, ComfyUI's undo queue not popped); Ctrl+Shift+Z
//                                      redoes; Ctrl+Z with the pointer over the viewer (focus elsewhere) too
//   camera_pick_the_tag_under_the_pointer  the eye placed so one camera's frustum line lies in front of
//                                      another camera's number tag: a click on the tag picks the tag's camera
//   stale_error_cleared                a Primitive node feeding the Mannequin's height (a node without a
//                                      viewer): a bad value shows the error, a good one clears it
// Each returns through check(name, ok, detail).
'use strict';

const V = (type) => `[...window.__poseFactoryViewer.viewers].find((v) => v.node.graph && v.node.comfyClass === ${JSON.stringify(type)})`;
const POSER = V('PoseFactoryPoseFromJSON');

// the figure's box corners and centre on screen (page pixels), the eye, the canvas rectangle
const VIEW = `(() => { const v = ${POSER}, T = window.__poseFactoryViewer.THREE;
  const box = new T.Box3().setFromBufferAttribute(v.body.geometry.attributes.position);
  const c = box.getCenter(new T.Vector3()), r = box.getSize(new T.Vector3()).length() / 2;
  const rect = v.canvas.getBoundingClientRect(); v.camera.updateMatrixWorld();
  const px = (p) => { const q = p.clone().project(v.camera); return [rect.left + (q.x + 1) / 2 * rect.width, rect.top + (1 - q.y) / 2 * rect.height, q.z]; };
  const corners = []; for (const x of [box.min.x, box.max.x]) for (const y of [box.min.y, box.max.y]) for (const z of [box.min.z, box.max.z]) corners.push(px(new T.Vector3(x, y, z)));
  return { centre: px(c), corners, rect: [rect.left, rect.top, rect.width, rect.height], eye: v.camera.position.toArray(),
    target: v.controls.target.toArray(), figure_centre: c.toArray(), radius: r, eye_to_centre: v.camera.position.distanceTo(c), view: v.view }; })()`;

function inside(p, rect, margin = 0) {
  return p[0] >= rect[0] - margin && p[0] <= rect[0] + rect[2] + margin && p[1] >= rect[1] - margin && p[1] <= rect[1] + rect[3] + margin;
}

async function drag(page, from, to, button = 'left') {
  await page.mouse.move(...from);
  await page.mouse.down({ button });
  await page.mouse.move(...to, { steps: 8 });
  await page.mouse.up({ button });
}

async function navChecks(page, check) {
  // the page has laid the node out at scale 1 (its box on screen as large as the canvas itself)
  await page.waitForFunction(`(() => { const v = ${POSER}; if (!v || !v.data || !v.body) return false; const r = v.canvas.getBoundingClientRect();
    return Math.abs(r.width - v.canvas.clientWidth) < 1 && r.left >= 0 && r.top >= 0; })()`);
  await page.waitForTimeout(300);
  // --- the pivot
  const s = await page.evaluate(VIEW);
  const d = Math.hypot(...s.target.map((t, i) => t - s.figure_centre[i]));
  const [x, y, w, h] = s.rect;
  await drag(page, [x + w * 0.3, y + h * 0.6], [x + w * 0.5, y + h * 0.5]);
  const t = await page.evaluate(VIEW);
  const moved = Math.hypot(...t.eye.map((e, i) => e - s.eye[i]));
  const shift = Math.hypot(t.centre[0] - s.centre[0], t.centre[1] - s.centre[1]);
  check('orbit_pivot_is_the_figure_centre', d < 0.01 && moved > 0.2 && shift < 2,
    { pivot_to_figure_centre_m: d, eye_moved_m: moved, figure_centre_moved_px: shift });

  // --- the wheel
  const mid = [x + w / 2, y + h / 2];
  await page.mouse.move(...mid);
  for (let i = 0; i < 40; i++) await page.mouse.wheel(0, -120);
  await page.waitForTimeout(200);
  const near = await page.evaluate(VIEW);
  for (let i = 0; i < 80; i++) await page.mouse.wheel(0, 120);
  await page.waitForTimeout(200);
  const far = await page.evaluate(VIEW);
  const tall = (v) => (Math.max(...v.corners.map((c) => c[1])) - Math.min(...v.corners.map((c) => c[1]))) / v.rect[3];
  // (the wheel did zoom both ways: nearer than half the start's distance, then farther than the start)
  check('zoom_keeps_the_figure_in_view', near.eye_to_centre < 0.5 * t.eye_to_centre && near.eye_to_centre > near.radius
    && inside(near.centre, near.rect) && near.centre[2] < 1 && far.eye_to_centre > t.eye_to_centre
    && inside(far.centre, far.rect) && tall(far) >= 0.05,
  { start: t.eye_to_centre, near: { eye_to_centre: near.eye_to_centre, radius: near.radius, centre_px: near.centre },
    far: { eye_to_centre: far.eye_to_centre, height_share: tall(far) } });

  // --- frame: the button, then F
  const nodeId = await page.evaluate(`${POSER}.node.id`);
  const framed = async () => {
    const v = await page.evaluate(VIEW);
    const all = v.corners.every((c) => inside(c, v.rect, 1));
    const off = Math.hypot(v.centre[0] - (v.rect[0] + v.rect[2] / 2), v.centre[1] - (v.rect[1] + v.rect[3] / 2));
    return { ok: all && off < 0.1 * v.rect[3] && tall(v) >= 0.5, height_share: tall(v), centre_off_px: off, all_corners_in: all };
  };
  const button = page.locator(`.pose-factory-viewer[data-node-id="${nodeId}"] button`, { hasText: /^frame$/ });
  const hasButton = (await button.count()) === 1;
  await drag(page, [x + w * 0.5, y + h * 0.5], [x + w * 0.8, y + h * 0.2], 'right');
  for (let i = 0; i < 10; i++) await page.mouse.wheel(0, 120);
  if (hasButton) await button.click();
  const byButton = await framed();
  await drag(page, [x + w * 0.5, y + h * 0.5], [x + w * 0.1, y + h * 0.9], 'right');
  for (let i = 0; i < 10; i++) await page.mouse.wheel(0, 120);
  await page.evaluate(`${POSER}.canvas.focus()`);
  await page.keyboard.press('f');
  const byKey = await framed();
  check('frame_button_frames_the_figure', hasButton && byButton.ok && byKey.ok, { hasButton, byButton, byKey });

  // --- Ctrl+Z in the viewer: the pose, not the graph
  const before = await page.evaluate(`(() => { const v = ${POSER}; const g = window.app.graph;
    const other = g._nodes.find((n) => n.comfyClass === "PoseFactoryCameraList");
    other.pos = [other.pos[0] + 37, other.pos[1]]; // a graph change ComfyUI's undo would take back
    const tracker = window.app.extensionManager.workflow.activeWorkflow.changeTracker;
    tracker.captureCanvasState();
    window.__pfMarks = { other: other.id, otherPos: [...other.pos], viewer: v, node: v.node, nodes: g._nodes.length };
    v.select("l_elbow");
    return { joints: v.node.widgets.find((w) => w.name === "joints").value, undoQueue: tracker.undoQueue.length }; })()`);
  await page.waitForFunction(`${POSER}.dofs.querySelector('input[type=range][data-dof="flex"]')`);
  const slider = page.locator(`.pose-factory-viewer[data-node-id="${nodeId}"] input[type=range][data-dof="flex"]`);
  await slider.fill(String(Number(await slider.inputValue()) - 20));
  await page.waitForTimeout(300);
  const edited = await page.evaluate(`${POSER}.node.widgets.find((w) => w.name === "joints").value`);
  // focus the 3D view (a press on an empty corner picks nothing), then the keys
  const r2 = await page.evaluate(`(() => { const r = ${POSER}.canvas.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })()`);
  await page.mouse.click(r2[0] + 6, r2[1] + r2[3] - 6);
  const focused = await page.evaluate(() => { const e = document.activeElement; return e ? `${e.tagName}.${e.className}` : null; });
  await page.keyboard.press('Control+z');
  await page.waitForTimeout(1200);
  const undone = await page.evaluate(`(() => { const m = window.__pfMarks, g = window.app.graph, node = g.getNodeById(m.node.id);
    const tracker = window.app.extensionManager.workflow.activeWorkflow.changeTracker;
    return { same_node: node === m.node, same_viewer: node && node.__poseFactoryViewer === m.viewer, nodes: g._nodes.length,
      other_kept: JSON.stringify([...g.getNodeById(m.other).pos]) === JSON.stringify(m.otherPos), joints: node && node.widgets.find((w) => w.name === "joints").value,
      redo: m.viewer.redo.length, undoQueue: tracker.undoQueue.length }; })()`);
  await page.keyboard.press('Control+Shift+z');
  await page.waitForTimeout(800);
  const redone = await page.evaluate(`window.__pfMarks.node.widgets.find((w) => w.name === "joints").value`);
  // the pointer over the viewer, the focus on the page's body
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  await page.mouse.move(r2[0] + r2[2] / 2, r2[1] + r2[3] / 2);
  await page.keyboard.press('Control+z');
  await page.waitForTimeout(1200);
  const hoverUndone = await page.evaluate(`(() => { const m = window.__pfMarks; return { same_node: window.app.graph.getNodeById(m.node.id) === m.node,
    joints: m.node.widgets.find((w) => w.name === "joints").value }; })()`);
  check('ctrl_z_in_viewer_undoes_the_pose', edited !== before.joints && undone.same_node && undone.same_viewer
    && undone.joints === before.joints && undone.other_kept && undone.undoQueue >= before.undoQueue && redone === edited && hoverUndone.same_node && hoverUndone.joints === before.joints,
  { before, edited, focused, undone, redone, hoverUndone });

  // --- picking: another camera's frustum line in front of a tag
  await page.evaluate(`${POSER}.freeView()`);
  const aim = await page.evaluate(`(() => { const v = ${POSER}, T = window.__poseFactoryViewer.THREE;
    const lines = v.rigs.children.filter((o) => o.isLineSegments), tags = v.rigs.children.filter((o) => o.isSprite);
    const a = lines[0], b = tags.find((t) => t.userData.view !== a.userData.view);
    const pos = a.geometry.attributes.position;
    const p0 = new T.Vector3().fromBufferAttribute(pos, 0).lerp(new T.Vector3().fromBufferAttribute(pos, 1), 0.5);
    const eye = p0.clone().add(p0.clone().sub(b.position).setLength(1.0));
    v.camera.position.copy(eye); v.camera.lookAt(b.position); v.controls.target.copy(b.position); v.draw();
    const rect = v.canvas.getBoundingClientRect(), q = b.position.clone().project(v.camera);
    return { front: a.userData.view, tag: b.userData.view, at: [rect.left + (q.x + 1) / 2 * rect.width, rect.top + (1 - q.y) / 2 * rect.height] }; })()`);
  await page.mouse.click(...aim.at);
  await page.waitForTimeout(300);
  const picked = await page.evaluate(`${POSER}.view`);
  check('camera_pick_the_tag_under_the_pointer', picked === aim.tag, { ...aim, picked });
  await page.evaluate(`${POSER}.frameFigure && ${POSER}.frameFigure()`);

  // --- a stale error: a Pose Sequence whose text comes from a Primitive node (a node without a viewer)
  const made = await page.evaluate(() => {
    const g = window.app.graph, req = g._nodes.find((n) => n.comfyClass === 'PoseFactoryRequestPoseBatch');
    const seq = window.LiteGraph.createNode('PoseFactoryPoseSequence');
    seq.pos = [req.pos[0] - 900, req.pos[1] + 900];
    g.add(seq);
    const slot = seq.inputs.findIndex((i) => i.name === 'poses');
    const prim = window.LiteGraph.createNode('PrimitiveNode');
    prim.pos = [seq.pos[0] - 300, seq.pos[1]];
    g.add(prim);
    prim.connect(0, seq, slot);
    window.__pfStale = { seq: seq.id, prim: prim.id, was: req.getInputNode(req.inputs.findIndex((i) => i.name === 'poses')).id };
    seq.connect(0, req, req.inputs.findIndex((i) => i.name === 'poses'));
    return { slot, widgets: (prim.widgets || []).map((x) => x.name) };
  });
  const setPrim = (value) => page.evaluate((value) => {
    const prim = window.app.graph.getNodeById(window.__pfStale.prim), wd = prim.widgets[0];
    wd.value = value; wd.callback && wd.callback(value);
  }, value);
  await page.waitForTimeout(800);
  await setPrim('no_such_preset');
  await page.evaluate('window.__poseFactoryViewer.refreshAll()'); // as any edit on a viewer node does
  await page.waitForTimeout(1500);
  const bad = await page.evaluate(`${V('PoseFactoryRequestPoseBatch')}.error`);
  await setPrim('t_pose');
  await page.waitForTimeout(2000);
  const good = await page.evaluate(`(() => { const v = ${V('PoseFactoryRequestPoseBatch')}; return { error: v.error, preset: v.data && v.data.pose.preset }; })()`);
  check('stale_error_cleared', /no_such_preset/.test(bad || '') && good.error === null && good.preset === 't_pose', { made, bad, good });
  await page.evaluate(() => { // the template's graph again
    const g = window.app.graph, m = window.__pfStale, req = g._nodes.find((n) => n.comfyClass === 'PoseFactoryRequestPoseBatch');
    g.getNodeById(m.was).connect(0, req, req.inputs.findIndex((i) => i.name === 'poses'));
    g.remove(g.getNodeById(m.prim)); g.remove(g.getNodeById(m.seq));
  });
  await page.waitForTimeout(800);
}

module.exports = { navChecks };
