// Several people in the 3D viewer (issue 22, point 4), run by scripts/viewer_harness_check.js in a real
// ComfyUI with the local worker (renders). The example "Posing in 3D - no models" is loaded and turned
// into a scene of two people: Scene 0 (the example's Mannequin, 1.75 m, at x = -0.55) chained into
// Scene 1 (a second Mannequin, 1.3 m heavy with the child body shape, at x = 0.6, turned 35 degrees,
// with its own Pose From JSON "a_pose"), feeding Request Pose Batch, whose shared poses are the
// example's Pose From JSON (person 0 takes them).
//   people_drawn                      every viewer (Request, both Pose From JSON, both Mannequins, Camera
//                                     List) shows both people, no error (a Scene node has no viewer)
//   people_own_person_picked          each viewer picks its own person (its poses', its subject's)
//   people_picker_listed              the person picker lists both, with where their poses come from
//   people_click_picks_person         a click on person 1's figure in the Request viewer picks person 1
//   people_pose_person_1              in person 1's Pose From JSON viewer, a click on person 1's left elbow and
//                                     its slider: that node holds it, the shared one and person 0 are unchanged
//   people_pose_person_0              person 0 picked in the same viewer (the list): its slider writes the
//                                     shared Pose From JSON (another node); undo restores it
//   people_openpose_preview_both      the OpenPose preview of view 0 draws both skeletons
//   people_depth_preview_both         the depth preview of view 0 shows both people
//   people_prompt_ran, people_render_matches_preview_within_2px   the batch's keypoints (both people) of
//                                     view 0 against the browser's preview of that view
//   people_depth_preview_matches_render  the worker's depth of view 0 against the preview: subject IoU >= 0.9,
//                                     mean absolute difference <= 12 of 255
//   people_rig_drawn                  a third person, the pack's template rig (Mixamo-named GLB) through a Custom
//                                     Rig node and a third Scene: drawn (its own mesh, posed by the core's bone
//                                     matrices), listed as a custom rig
//   people_rig_prompt_ran, people_rig_render_matches_preview_within_2px, people_rig_depth_preview_matches_render
//                                     the three people against the worker's render, as above
//   people_vue_*                      the same graph in the Vue node renderer: every person drawn, a click on
//                                     person 1 picks it
// Screenshots: people.png, people_viewer.png, people_posing.png, people_rig.png, people_openpose_preview.png, people_depth_preview.png, people_vue.png.
'use strict';
const fs = require('fs');
const path = require('path');
const { queue } = require('./viewer_harness_run.js');
const ROOT = path.resolve(__dirname, '..');

const V = (type, nth = 0) => `[...window.__poseFactoryViewer.viewers].filter((v) => v.node.graph && v.node.comfyClass === ${JSON.stringify(type)})[${nth}]`;
const VID = (id) => `[...window.__poseFactoryViewer.viewers].find((v) => v.node.graph && String(v.node.id) === ${JSON.stringify(String(id))})`;
const REQ = V('PoseFactoryRequestPoseBatch');
const TOLERANCE_PX = 2;

// Turns the loaded example into the two-person scene; returns the ids of the nodes it made.
async function buildScene(page) {
  return page.evaluate(() => {
    const g = window.app.graph, L = window.LiteGraph;
    const find = (t) => g._nodes.find((n) => n.comfyClass === t);
    const req = find('PoseFactoryRequestPoseBatch'), man0 = find('PoseFactoryMannequin'), shared = find('PoseFactoryPoseFromJSON');
    const make = (type, pos, widgets = {}) => {
      const n = L.createNode(type);
      n.pos = pos;
      g.add(n);
      for (const [k, v] of Object.entries(widgets)) n.widgets.find((w) => w.name === k).value = v;
      return n;
    };
    const slot = (n, name) => n.inputs.findIndex((i) => i.name === name);
    const man1 = make('PoseFactoryMannequin', [-900, 0], { height: 1.3, build: 'heavy', proportions: 'child' });
    const own = make('PoseFactoryPoseFromJSON', [-900, 520], { preset: 'a_pose', joints: '{}' });
    const s0 = make('PoseFactoryScene', [-1400, 0], { position_x: -0.55, position_y: 0, facing: 0 });
    const s1 = make('PoseFactoryScene', [-1400, 560], { position_x: 0.6, position_y: -0.2, facing: 35 });
    man0.connect(0, s0, slot(s0, 'subject'));
    man1.connect(0, s1, slot(s1, 'subject'));
    own.connect(0, s1, slot(s1, 'poses'));
    s0.connect(0, s1, slot(s1, 'scene'));
    s1.connect(0, req, slot(req, 'subject'));
    for (const [k, v] of [['depth', true], ['normal', false], ['shaded', false], ['depth_range', 'image']]) {
      req.widgets.find((w) => w.name === k).value = v;
    }
    window.__poseFactoryViewer.refreshAll();
    return { req: req.id, man0: man0.id, man1: man1.id, shared: shared.id, own: own.id, s0: s0.id, s1: s1.id };
  });
}

// every viewer of the graph has a scene of two people (or an error)
async function settled(page) {
  await page.waitForFunction(() => [...window.__poseFactoryViewer.viewers].filter((v) => v.node.graph && v.visible)
    .every((v) => v.error || (v.full?.people?.length === 2 && v.figures.length === 2)), null, { timeout: 60000 }).catch(() => {});
}

// the page position of a world point in a viewer's 3D view
const screenOf = (viewer, p) => `(() => { const v = ${viewer}; const q = new window.__poseFactoryViewer.THREE.Vector3(${p});
  q.project(v.camera); const r = v.canvas.getBoundingClientRect();
  return [r.left + (q.x + 1) / 2 * r.width, r.top + (1 - q.y) / 2 * r.height]; })()`;
const jointOf = (viewer, person, joint) => `...(() => { const v = ${viewer}; const p = v.full.people[${person}];
  const j = v.meshData.joint_names.indexOf(${JSON.stringify(joint)}); return p.positions.slice(3 * j, 3 * j + 3); })()`;

async function centreOn(page, id) {
  await page.evaluate((nid) => {
    const node = window.app.graph.getNodeById(nid), ds = window.app.canvas.ds;
    ds.scale = 1;
    ds.offset = [-node.pos[0] + 80, -node.pos[1] + 60];
    window.app.canvas.setDirty(true, true);
  }, id);
  await page.waitForTimeout(600);
  await page.waitForFunction(() => [...window.__poseFactoryViewer.viewers].filter((v) => v.node.graph && v.visible)
    .every((v) => v.canvas.width === v.canvas.clientWidth && v.canvas.height === v.canvas.clientHeight));
}

// The worker renders the scene: its keypoints of view 0 (every person) and its depth image against the
// Request viewer's previews of that view.
async function compareWithRender(page, check, { url, storage, report, prefix, count }) {
  const run = await queue(page, url);
  check(`${prefix}_prompt_ran`, run?.status?.status_str === 'success', run?.status);
  const batches = await (await fetch(`${url}/pose_factory/projects/examples/batches`)).json();
  let bid = null, manifest = null;
  for (const b of batches.batches ?? []) {
    const m = await (await fetch(`${url}/pose_factory/batches/examples/${b.batch_id}/manifest`)).json();
    if (m?.spec?.subjects?.length === count) { bid = b.batch_id; manifest = m; break; }
  }
  const entry = manifest?.entries?.find((e) => e.view === 0 && e.frame === 0);
  if (!entry || !storage) {
    check(`${prefix}_render_matches_preview_within_2px`, false, { bid, entry: entry ?? null });
    check(`${prefix}_depth_preview_matches_render`, false, { bid });
  } else {
    const dir = path.join(storage, 'projects', 'examples', 'batches', bid);
    const kp = JSON.parse(fs.readFileSync(path.join(dir, entry.files.keypoints.key), 'utf8'));
    const rendered = (kp.people ?? kp[0]?.people).map((q) => q.pose_keypoints_2d);
    const shown = await page.evaluate(`(() => { const v = ${REQ}; v.lookThrough(0); return v.previewPeople().people.map((q) => q.keypoints); })()`);
    let worst = 0, compared = 0;
    rendered.forEach((body, k) => shown[k]?.forEach((pt, i) => {
      if (body[3 * i + 2] < 1) return;
      compared++;
      worst = Math.max(worst, Math.hypot(pt[0] - body[3 * i], pt[1] - body[3 * i + 1]));
    }));
    check(`${prefix}_render_matches_preview_within_2px`, rendered.length === count && compared >= 10 * count && worst <= TOLERANCE_PX,
      { batch_id: bid, people: rendered.length, visible_points: compared, worst_px: worst });
    const png = fs.readFileSync(path.join(dir, entry.files.depth.key)).toString('base64');
    const cmp = await page.evaluate(`(async () => { const v = ${REQ}; v.lookThrough(0); v.setPreviewMode("depth");
      const { width: w, height: h } = v.preview, a = v.preview.getContext("2d").getImageData(0, 0, w, h).data;
      const img = new Image(); img.src = "data:image/png;base64,${png}"; await img.decode();
      const c = document.createElement("canvas"); c.width = img.width; c.height = img.height;
      const g = c.getContext("2d"); g.drawImage(img, 0, 0); const b = g.getImageData(0, 0, c.width, c.height).data;
      v.setPreviewMode("openpose"); v.showPreview = false; v.freeView();
      if (c.width !== w || c.height !== h) return { size: [w, h], render: [c.width, c.height] };
      let both = 0, either = 0, diff = 0;
      for (let i = 0; i < a.length; i += 4) { const pa = a[i] > 0, pb = b[i] > 0; if (pa || pb) either++;
        if (pa && pb) { both++; diff += Math.abs(a[i] - b[i]); } }
      return { subject_iou: both / Math.max(1, either), mean_abs_diff_8bit: diff / Math.max(1, both) }; })()`);
    report.figures = { ...(report.figures ?? {}), [`${prefix}_depth_vs_render`]: cmp };
    check(`${prefix}_depth_preview_matches_render`, cmp.subject_iou >= 0.9 && cmp.mean_abs_diff_8bit <= 12, { batch_id: bid, ...cmp });
  }

}

async function peopleChecks(page, check, { url, storage, input, out, loadWorkflow, workflow, report, open }) {
  await loadWorkflow(page, workflow);
  const ids = await buildScene(page);
  await page.evaluate(async () => { await window.app.extensionManager.command.execute('Comfy.Canvas.FitView'); });
  await page.waitForTimeout(800);
  await settled(page);
  const all = await page.evaluate(() => [...window.__poseFactoryViewer.viewers].filter((v) => v.node.graph).map((v) => ({
    type: v.node.comfyClass, id: v.node.id, error: v.error ?? null, people: v.full?.people?.length ?? 0,
    figures: v.figures.length, picked: v.picked, visible: v.visible })));
  check('people_drawn', all.length >= 6 && all.filter((v) => v.visible).every((v) => !v.error && v.people === 2 && v.figures === 2), all);
  await page.screenshot({ path: path.join(out, 'people.png') });
  // each viewer on screen in turn (one off screen does not ask for its scene until it shows)
  const want = { [ids.own]: 1, [ids.shared]: 0, [ids.man0]: 0, [ids.man1]: 1 };
  const pickedOf = {};
  for (const id of [ids.own, ids.shared, ids.man0, ids.man1]) {
    await centreOn(page, id);
    await page.waitForFunction(`(() => { const v = ${VID(id)}; return v && (v.error || v.full?.people?.length === 2); })()`,
      null, { timeout: 30000 }).catch(() => {});
    pickedOf[id] = await page.evaluate(`${VID(id)}.picked`);
  }
  check('people_own_person_picked', Object.entries(want).every(([id, k]) => pickedOf[id] === k), { want, got: pickedOf });

  // the Request viewer: its picker, and a click on person 1's figure
  await centreOn(page, ids.req);
  const picker = await page.evaluate(`(() => { const v = ${REQ}; return { shown: v.personSelect.style.display !== "none",
    options: [...v.personSelect.options].map((o) => o.textContent) }; })()`);
  check('people_picker_listed', picker.shown && picker.options.length === 2 && /person 1 · poses: /.test(picker.options[1]), picker);
  await page.evaluate(`(() => { const v = ${REQ}; v.pickPerson(0); v.frameFigure(); })()`);
  const at = await page.evaluate(screenOf(REQ, jointOf(REQ, 1, 'spine')));
  await page.mouse.click(at[0], at[1]);
  await page.waitForTimeout(300);
  const clicked = await page.evaluate(`${REQ}.picked`);
  check('people_click_picks_person', clicked === 1, { picked: clicked, at });
  await page.screenshot({ path: path.join(out, 'people_viewer.png') });

  // person 1's Pose From JSON viewer poses person 1 (that node), then person 0 (the shared one)
  const POSER = VID(ids.own);
  await centreOn(page, ids.own);
  await page.evaluate(`${POSER}.frameFigure()`);
  const widgetOf = (id) => `window.app.graph.getNodeById(${id}).widgets.find((w) => w.name === "joints").value`;
  const sharedBefore = await page.evaluate(widgetOf(ids.shared));
  const person0Before = await page.evaluate(`${POSER}.full.people[0].angles.l_elbow.flex`);
  const elbowAt = async (person) => page.evaluate(screenOf(POSER, jointOf(POSER, person, 'l_elbow')));
  let p = await elbowAt(1);
  await page.mouse.click(p[0], p[1]);
  await page.waitForTimeout(300);
  const sel1 = await page.evaluate(`(() => { const v = ${POSER}; return { selected: v.selected, picked: v.picked }; })()`);
  const slider = page.locator(`.pose-factory-viewer[data-node-id="${ids.own}"] input[type=range][data-dof="flex"]`);
  let before = Number(await slider.inputValue());
  await slider.fill(String(before + 40));
  await page.waitForFunction(`${POSER}.full.people[1].angles.l_elbow.flex === ${before + 40}`, null, { timeout: 20000 }).catch(() => {});
  await page.waitForTimeout(1200); // every viewer refreshes
  const posed1 = await page.evaluate(`(() => ({ own: JSON.parse(${widgetOf(ids.own)} || "{}"), shared: ${widgetOf(ids.shared)},
    req1: ${POSER}.full.people[1].angles.l_elbow.flex, req0: ${POSER}.full.people[0].angles.l_elbow.flex }))()`);
  await page.screenshot({ path: path.join(out, 'people_posing.png') });
  check('people_pose_person_1', sel1.selected === 'l_elbow' && sel1.picked === 1 && posed1.own.l_elbow?.flex === before + 40
    && posed1.shared === sharedBefore && posed1.req1 === before + 40 && posed1.req0 === person0Before, { sel1, before, ...posed1 });

  await page.locator(`.pose-factory-viewer[data-node-id="${ids.own}"] select`, { hasText: 'person 0' }).selectOption('0');
  await page.waitForTimeout(300);
  p = await elbowAt(0);
  await page.mouse.click(p[0], p[1]);
  await page.waitForTimeout(300);
  const sel0 = await page.evaluate(`(() => { const v = ${POSER}; return { selected: v.selected, picked: v.picked, dots: v.jointDots.children.length }; })()`);
  before = Number(await slider.inputValue());
  const target = before >= 100 ? before - 30 : before + 30;
  await slider.fill(String(target));
  await page.waitForFunction(`${POSER}.full.people[0].angles.l_elbow.flex === ${target}`, null, { timeout: 20000 }).catch(() => {});
  const posed0 = await page.evaluate(`(() => ({ shared: JSON.parse(${widgetOf(ids.shared)}), own: JSON.parse(${widgetOf(ids.own)} || "{}") }))()`);
  await page.locator(`.pose-factory-viewer[data-node-id="${ids.own}"] button`, { hasText: 'undo' }).click();
  await page.waitForFunction(`${POSER}.full.people[0].angles.l_elbow.flex === ${before}`, null, { timeout: 20000 }).catch(() => {});
  const undone = await page.evaluate(widgetOf(ids.shared));
  const sharedJoints = posed0.shared.joints ?? posed0.shared;
  check('people_pose_person_0', sel0.picked === 0 && sel0.selected === 'l_elbow' && sharedJoints.l_elbow?.flex === target
    && posed0.own.l_elbow?.flex === posed1.own.l_elbow?.flex && undone === sharedBefore,
  { sel0, before, target, shared: posed0.shared, undone, sharedBefore });

  // the previews of view 0 in the Request viewer: both people
  await centreOn(page, ids.req);
  const inset = await page.evaluate(`(() => { const v = ${REQ}; v.lookThrough(0); v.setPreviewMode("openpose");
    const { width: w, height: h } = v.preview, px = v.preview.getContext("2d").getImageData(0, 0, w, h).data;
    const lit = (x, y) => { let n = 0; for (let dy = -5; dy <= 5; dy++) for (let dx = -5; dx <= 5; dx++) {
      const i = 4 * (Math.round(y + dy) * w + Math.round(x + dx)); if (px[i] + px[i + 1] + px[i + 2] > 60) n++; } return n; };
    const people = v.previewPeople().people;
    const necks = people.map((p) => p.keypoints[1]);
    const openpose = { people: people.length, neck_lit: necks.map((k) => lit(k[0], k[1])), necks, png: v.preview.toDataURL("image/png") };
    v.setPreviewMode("depth");
    const d = v.preview.getContext("2d").getImageData(0, 0, w, h).data, mid = (necks[0][0] + necks[1][0]) / 2;
    let left = 0, right = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i] > 0) { if ((i / 4) % w < mid) left++; else right++; }
    const depth = { left, right, png: v.preview.toDataURL("image/png") };
    v.setPreviewMode("openpose");
    return { openpose, depth }; })()`);
  fs.writeFileSync(path.join(out, 'people_openpose_preview.png'), Buffer.from(inset.openpose.png.split(',')[1], 'base64'));
  fs.writeFileSync(path.join(out, 'people_depth_preview.png'), Buffer.from(inset.depth.png.split(',')[1], 'base64'));
  delete inset.openpose.png; delete inset.depth.png;
  check('people_openpose_preview_both', inset.openpose.people === 2 && inset.openpose.neck_lit.every((n) => n > 20), inset.openpose);
  check('people_depth_preview_both', inset.depth.left > 2000 && inset.depth.right > 2000, inset.depth);

  await compareWithRender(page, check, { url, storage, report, prefix: 'people', count: 2 });

  // a third person: the pack's template rig (a Mixamo-named GLB) through a Custom Rig node
  if (input) {
    const rigFile = path.join(input, 'pf_viewer_check', 'rig.glb');
    fs.mkdirSync(path.dirname(rigFile), { recursive: true });
    fs.copyFileSync(path.join(ROOT, 'example_workflows', 'input', '3d', 'pose_factory_mannequin_rig.glb'), rigFile);
    ids.s2 = await page.evaluate(({ file, s1, req }) => {
      const g = window.app.graph, L = window.LiteGraph;
      const rigNode = L.createNode('PoseFactoryCustomRig');
      rigNode.pos = [-900, 1100];
      g.add(rigNode);
      const set = (n, k, v) => { n.widgets.find((w) => w.name === k).value = v; };
      set(rigNode, 'path_or_key', file); set(rigNode, 'bone_map', 'mixamo'); set(rigNode, 'height', 1.7);
      const s2 = L.createNode('PoseFactoryScene');
      s2.pos = [-1400, 1100];
      g.add(s2);
      set(s2, 'position_x', 0.1); set(s2, 'position_y', 0.9); set(s2, 'facing', -20);
      const slot = (n, name) => n.inputs.findIndex((x) => x.name === name);
      rigNode.connect(0, s2, slot(s2, 'subject'));
      g.getNodeById(s1).connect(0, s2, slot(s2, 'scene'));
      const request = g.getNodeById(req);
      s2.connect(0, request, slot(request, 'subject'));
      window.__poseFactoryViewer.refreshAll();
      return s2.id;
    }, { file: rigFile, s1: ids.s1, req: ids.req });
    await centreOn(page, ids.req);
    await page.waitForFunction(`${REQ}.figures.length === 3 || !!${REQ}.error`, null, { timeout: 90000 }).catch(() => {});
    await page.evaluate(`(() => { const v = ${REQ}; v.freeView(); v.frameAll(); v.frameFigure(); })()`); // from the front right
    const rigShown = await page.evaluate(`(() => { const v = ${REQ}; const p = v.full?.people?.[2];
      return { error: v.error ?? null, note: v.note, people: v.full?.people?.length, figures: v.figures.length,
        type: p?.type, drawn: p?.drawn, missing: p?.missing?.length, triangles: v.figures[2]?.body.geometry.index.count / 3,
        options: [...v.personSelect.options].map((o) => o.textContent) }; })()`);
    await page.screenshot({ path: path.join(out, 'people_rig.png') });
    check('people_rig_drawn', !rigShown.error && rigShown.people === 3 && rigShown.figures === 3 && rigShown.type === 'rig'
      && rigShown.drawn === true && rigShown.triangles > 1000 && /person 2 \(custom rig\)/.test(rigShown.options[2] ?? ''), rigShown);
    await compareWithRender(page, check, { url, storage, report, prefix: 'people_rig', count: 3 });
  } else check('people_rig_drawn', false, 'needs --input (ComfyUI\'s input folder)');

  // the same graph in the Vue node renderer
  const graph = await page.evaluate(() => window.app.graph.serialize());
  const vue = await open(url, { vueNodes: true });
  try {
    await vue.page.evaluate(async (w) => { await window.app.loadGraphData(w); }, graph);
    await vue.page.waitForTimeout(1500);
    await centreOn(vue.page, ids.req);
    await settled(vue.page);
    const drawn = await vue.page.evaluate(`(() => { const v = ${REQ}; return { error: v.error ?? null, people: v.full?.people?.length,
      figures: v.figures.length, draws: v.draws ?? 0, vue: window.app.extensionManager?.setting?.get?.("Comfy.VueNodes.Enabled") }; })()`);
    const n = ids.s2 ? 3 : 2;
    check('people_vue_drawn', drawn.vue === true && !drawn.error && drawn.people === n && drawn.figures === n && drawn.draws > 0, drawn);
    await vue.page.evaluate(`(() => { const v = ${REQ}; v.pickPerson(0); v.frameFigure(); })()`);
    const vat = await vue.page.evaluate(screenOf(REQ, jointOf(REQ, 1, 'spine')));
    await vue.page.mouse.click(vat[0], vat[1]);
    await vue.page.waitForTimeout(300);
    const vpicked = await vue.page.evaluate(`${REQ}.picked`);
    check('people_vue_click_picks_person', vpicked === 1, { picked: vpicked, at: vat });
    await vue.page.screenshot({ path: path.join(out, 'people_vue.png') });
    const unexpected = vue.errors.filter((e) => !/status of 400 .*viewer\/scene/.test(e));
    check('people_no_console_errors_vue', unexpected.length === 0, unexpected.slice(0, 10));
  } finally {
    await vue.close();
  }
}

module.exports = { peopleChecks, buildScene };
