#!/usr/bin/env node
// The 3D viewer in a real ComfyUI (the shared harness), driven by playwright like a user:
//   1. example_workflows/Posing in 3D - no models.json loads; every viewer shows its scene; 0 console errors;
//      screenshot preset.png (the figure in the preset pose, the saved views' frusta)
//   2. a click on the left elbow selects it; its flex slider moved by +45 degrees changes the
//      Pose from JSON node's joints JSON; a value past the limit stops at the limit; undo; a drag
//      along the gizmo's flex ring turns the elbow by the dragged 30 degrees (one undo step);
//      mirror and start from a preset, both undone
//   3. the free view is turned by a mouse drag; "add this view" appends it to the Camera List;
//      screenshot posed.png; the depth and normal previews of that view draw (background, subject, near
//      brighter than far), depth_preview.png and normal_preview.png
//   4. the prompt is queued (with depth and normal, depth ranged per image); the rendered batch's
//      keypoints of the added view match the browser's OpenPose preview of that view within 2 px
//      (points the render marks visible); its depth and normal previews match the worker's images
//      (subject IoU >= 0.9, mean absolute difference <= 12 of 255 where both show the subject)
//   5. collapsed: nothing drawn; the Vue node renderer ("Nodes 2.0"): the viewers draw, a click picks
//      the left elbow, screenshot vue.png
//   6. navigation (scripts/viewer_harness_nav.js; classic, then the Vue renderer): the orbit's pivot is the figure's centre, the wheel keeps
//      the figure in view, "frame" and F frame it, Ctrl+Z in the viewer undoes the pose and not the graph,
//      a click picks the camera whose tag is under the pointer, a stale error is cleared; then
//      (scripts/viewer_harness_run.js, with --input: ComfyUI's input folder) a Pose Prop's box is drawn and
//      its depth preview matches the worker's depth image, and a Motion Clip's poses are shown after the
//      run as the worker rendered them
//   7. several people (scripts/viewer_harness_people.js; classic, then the Vue renderer): two chained Scene nodes,
//      every viewer draws both, each picks its own person, the picker and a click pick a person, the gizmo
//      writes the picked person's Pose From JSON (its own or the shared one), the OpenPose and depth previews
//      show both and match the worker's render of them
// Prints one JSON report (also --out DIR/report.json); exit 1 when a check fails. --only nav runs step 6
// alone, --only people step 7.
//
//   node scripts/viewer_harness_check.js --url http://127.0.0.1:8205 --storage DIR [--input DIR] [--out DIR] [--only nav|people]
// (scripts/viewer_harness_check.sh starts and stops the server with a scratch storage.)
'use strict';
const fs = require('fs');
const path = require('path');
const { open, loadWorkflow, focusNode, ROOT } = require('./viewer_harness.js');
const { navChecks } = require('./viewer_harness_nav.js');
const { runChecks } = require('./viewer_harness_run.js');
const { peopleChecks } = require('./viewer_harness_people.js');

const args = process.argv.slice(2);
const arg = (name, dflt) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : dflt; };
const URL_ = arg('--url', 'http://127.0.0.1:8188').replace(/\/$/, '');
const STORAGE = arg('--storage');
const INPUT = arg('--input');
const ONLY = arg('--only', 'all');
const OUT = path.resolve(arg('--out', path.join(ROOT, 'out', 'harness', 'viewer')));
const WORKFLOW = path.join(ROOT, 'example_workflows', 'Posing in 3D - no models.json');
const TOLERANCE_PX = 2;

const report = { checks: {}, ok: true };
function check(name, ok, detail) {
  report.checks[name] = { ok: Boolean(ok), ...(detail === undefined ? {} : { detail }) };
  if (!ok) report.ok = false;
}

const viewerOf = (type) => `[...window.__poseFactoryViewer.viewers].find((v) => v.node.graph && v.node.comfyClass === ${JSON.stringify(type)})`;

let closeBrowser = null; // the open browser's close (its profile folder is removed with it)

async function main() {
  fs.mkdirSync(OUT, { recursive: true });
  if (ONLY === 'all') await viewerChecks();
  if (ONLY === 'all' || ONLY === 'nav') await navigationChecks();
  if (ONLY === 'all' || ONLY === 'people') await peopleRun();
}

// 7. several people (scripts/viewer_harness_people.js): a scene of two chained Scene nodes
async function peopleRun() {
  const { page, errors, close } = await open(URL_);
  closeBrowser = close;
  await peopleChecks(page, check, { url: URL_, storage: STORAGE, input: INPUT, out: OUT, loadWorkflow, workflow: WORKFLOW, report, open });
  const unexpected = errors.filter((e) => !/status of 400 .*viewer\/scene/.test(e));
  check('people_no_console_errors_classic', unexpected.length === 0, unexpected.slice(0, 10));
  closeBrowser = null;
  await close();
}

// 6. navigation, keys, picking, a stale error; props and poses known after a run
async function navigationChecks() {
  const { page, errors, close } = await open(URL_);
  closeBrowser = close;
  await loadWorkflow(page, WORKFLOW);
  await focusNode(page, 'PoseFactoryPoseFromJSON');
  await navChecks(page, check);
  if (INPUT && STORAGE) {
    await runChecks(page, check, { url: URL_, storage: STORAGE, input: INPUT, out: OUT, loadWorkflow, focusNode,
      workflow: WORKFLOW, report });
  } else check('props_and_post_run_poses', false, 'needs --storage and --input (ComfyUI\'s input folder)');
  // the stale-error check's bad pose is answered 400 on purpose (the browser logs that as an error)
  const unexpected = errors.filter((e) => !/status of 400 .*viewer\/scene/.test(e));
  check('no_console_errors_navigation', unexpected.length === 0, unexpected.slice(0, 10));
  closeBrowser = null;
  await close();
  // the same navigation in the Vue node renderer (its nodes keep the pointer's moves and the wheel)
  const vue = await open(URL_, { vueNodes: true });
  closeBrowser = vue.close;
  await loadWorkflow(vue.page, WORKFLOW);
  await focusNode(vue.page, 'PoseFactoryPoseFromJSON');
  await navChecks(vue.page, (name, ok, detail) => check(`${name}_vue`, ok, detail));
  const vueUnexpected = vue.errors.filter((e) => !/status of 400 .*viewer\/scene/.test(e));
  check('no_console_errors_navigation_vue', vueUnexpected.length === 0, vueUnexpected.slice(0, 10));
  closeBrowser = null;
  await vue.close();
}

async function viewerChecks() {
  let { page, errors, close } = await open(URL_);
  closeBrowser = close;
  await loadWorkflow(page, WORKFLOW);
  const first = await page.evaluate(`(() => { const v = ${viewerOf('PoseFactoryPoseFromJSON')};
    return { error: v.error, preset: v.data.pose.preset, joints: v.node.widgets.find((w) => w.name === "joints").value,
             elbow: v.data.angles.l_elbow.flex, views: v.data.cameras.length,
             all: [...window.__poseFactoryViewer.viewers].filter((x) => x.node.graph).map((x) => [x.node.comfyClass, x.error ?? null, x.draws ?? 0]) }; })()`);
  check('viewers_loaded', first.all.every(([, e, d]) => !e && d > 0), first.all);
  check('preset_pose_shown', first.preset === 'waving' && first.views === 3, first);
  await page.screenshot({ path: path.join(OUT, 'preset.png') });
  await focusNode(page, 'PoseFactoryPoseFromJSON'); // the rest happens at scale 1
  await page.screenshot({ path: path.join(OUT, 'preset_viewer.png') });

  // 2. select the left elbow by clicking it in the 3D view
  const at = await page.evaluate(`(() => { const v = ${viewerOf('PoseFactoryPoseFromJSON')};
    const dot = v.jointDots.children.find((d) => d.userData.joint === "l_elbow");
    const p = dot.position.clone().project(v.camera); const r = v.canvas.getBoundingClientRect();
    return [r.left + (p.x + 1) / 2 * r.width, r.top + (1 - p.y) / 2 * r.height]; })()`);
  const under = await page.evaluate(([x, y]) => { const e = document.elementFromPoint(x, y);
    return e ? `${e.tagName}.${e.className}` : null; }, at);
  await page.mouse.click(at[0], at[1]);
  const selected = await page.evaluate(`${viewerOf('PoseFactoryPoseFromJSON')}.selected`);
  check('left_elbow_selected_by_click', selected === 'l_elbow', { selected, at, under });
  const nodeId = await page.evaluate(`${viewerOf('PoseFactoryPoseFromJSON')}.node.id`);
  const slider = page.locator(`.pose-factory-viewer[data-node-id="${nodeId}"] input[type=range][data-dof="flex"]`);
  const before = Number(await slider.inputValue());
  await slider.fill(String(before + 45));
  await page.waitForFunction(`${viewerOf('PoseFactoryPoseFromJSON')}.data.angles.l_elbow.flex === ${before + 45}`);
  const joints = JSON.parse(await page.evaluate(`${viewerOf('PoseFactoryPoseFromJSON')}.node.widgets.find((w) => w.name === "joints").value`));
  check('rotated_45_into_pose_json', joints.l_elbow?.flex === before + 45,
    { before: first.joints, after: joints });
  // past the limit: the number box is clamped to the core's limit (l_elbow flex -5..150)
  const number = page.locator(`.pose-factory-viewer[data-node-id="${nodeId}"] input[type=number][data-dof="flex"]`);
  await number.fill('400');
  await number.blur(); // leaving the box commits it (change)
  await page.waitForFunction(`${viewerOf('PoseFactoryPoseFromJSON')}.data.angles.l_elbow.flex === 150`);
  const clamped = JSON.parse(await page.evaluate(`${viewerOf('PoseFactoryPoseFromJSON')}.node.widgets.find((w) => w.name === "joints").value`));
  check('past_limit_stopped_at_limit', clamped.l_elbow?.flex === 150, clamped);
  await page.evaluate(`${viewerOf('PoseFactoryPoseFromJSON')}.step(${viewerOf('PoseFactoryPoseFromJSON')}.undo, ${viewerOf('PoseFactoryPoseFromJSON')}.redo)`);
  await page.waitForFunction(`${viewerOf('PoseFactoryPoseFromJSON')}.data.angles.l_elbow.flex === ${before + 45}`);
  check('undo_back_to_45', true);
  // the gizmo: drag along the flex ring by 30 degrees (the ring's own points, projected), then undo it
  const arc = await page.evaluate(`(() => { const v = ${viewerOf('PoseFactoryPoseFromJSON')};
    const ring = v.jointDots.children.find((o) => o.userData.gizmo && o.userData.gizmo.dof === "flex");
    const pos = ring.geometry.attributes.position; const r = v.canvas.getBoundingClientRect();
    const out = [];
    for (let t = 0; t <= 4; t++) { const p = new window.__poseFactoryViewer.THREE.Vector3().fromBufferAttribute(pos, 2 * t).project(v.camera);
      out.push([r.left + (p.x + 1) / 2 * r.width, r.top + (1 - p.y) / 2 * r.height]); }
    return out; })()`);
  await page.mouse.move(...arc[0]);
  await page.mouse.down();
  for (const pt of arc.slice(1)) await page.mouse.move(...pt, { steps: 3 });
  await page.mouse.up();
  // the scene shown is the stored pose's (the last of the drag's requests has come back)
  await page.waitForFunction(`(() => { const v = ${viewerOf('PoseFactoryPoseFromJSON')};
    const stored = JSON.parse(v.node.widgets.find((w) => w.name === "joints").value);
    return v.data.angles.l_elbow.flex === stored.l_elbow.flex; })()`);
  await page.waitForTimeout(300);
  const dragged = await page.evaluate(`(() => { const v = ${viewerOf('PoseFactoryPoseFromJSON')}; return { flex: v.data.angles.l_elbow.flex, undo: v.undo.length }; })()`);
  check('gizmo_drag_turns_the_elbow_by_30', Math.abs(Math.abs(dragged.flex - (before + 45)) - 30) < 3, dragged);
  await page.evaluate(`${viewerOf('PoseFactoryPoseFromJSON')}.step(${viewerOf('PoseFactoryPoseFromJSON')}.undo, ${viewerOf('PoseFactoryPoseFromJSON')}.redo)`);
  await page.waitForFunction(`${viewerOf('PoseFactoryPoseFromJSON')}.data.angles.l_elbow.flex === ${before + 45}`);
  check('one_undo_step_per_drag', true);
  // mirror (left <-> right), then start from another preset; each undone
  const V = viewerOf('PoseFactoryPoseFromJSON');
  await page.locator(`.pose-factory-viewer[data-node-id="${nodeId}"] button`, { hasText: 'mirror' }).click();
  await page.waitForFunction(`${V}.data.pose.mirror === true`);
  const mirrored = await page.evaluate(`(() => { const v = ${V}; return { joints: v.node.widgets.find((w) => w.name === "joints").value,
    r_elbow: v.data.angles.r_elbow.flex, l_elbow: v.data.angles.l_elbow.flex }; })()`);
  check('mirror_swaps_left_and_right', mirrored.r_elbow === before + 45 && JSON.parse(mirrored.joints).mirror === true, mirrored);
  await page.locator(`.pose-factory-viewer[data-node-id="${nodeId}"] select[title^="start from"]`).selectOption('t_pose');
  await page.waitForFunction(`${V}.data.pose.preset === "t_pose"`);
  const fresh = await page.evaluate(`(() => { const v = ${V}; return [v.node.widgets.find((w) => w.name === "preset").value,
    v.node.widgets.find((w) => w.name === "joints").value]; })()`);
  check('start_from_preset', fresh[0] === 't_pose' && fresh[1] === '{}', fresh);
  for (let i = 0; i < 2; i++) await page.evaluate(`${V}.step(${V}.undo, ${V}.redo)`);
  await page.waitForFunction(`${V}.data.pose.preset === "waving" && !${V}.data.pose.mirror && ${V}.data.angles.l_elbow.flex === ${before + 45}`);
  check('undo_back_to_the_posed_waving', true);

  // 3. turn the free view with the mouse, then "add this view"
  const box = await page.evaluate(`(() => { const r = ${viewerOf('PoseFactoryPoseFromJSON')}.canvas.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })()`);
  await page.mouse.move(box[0] + box[2] * 0.2, box[1] + box[3] * 0.5);
  await page.mouse.down();
  await page.mouse.move(box[0] + box[2] * 0.35, box[1] + box[3] * 0.45, { steps: 8 });
  await page.mouse.up();
  const camsBefore = JSON.parse(await page.evaluate(`${viewerOf('PoseFactoryCameraList')}.node.widgets.find((w) => w.name === "cameras").value`));
  const preview = await page.evaluate(`(() => { const v = ${viewerOf('PoseFactoryPoseFromJSON')}; return v.previewKeypoints(); })()`);
  await page.locator(`.pose-factory-viewer[data-node-id="${nodeId}"] button`, { hasText: 'add this view' }).click();
  const camsAfter = JSON.parse(await page.evaluate(`${viewerOf('PoseFactoryCameraList')}.node.widgets.find((w) => w.name === "cameras").value`));
  check('view_added_to_camera_list', camsAfter.length === camsBefore.length + 1, camsAfter[camsAfter.length - 1]);
  await page.waitForFunction(`${viewerOf('PoseFactoryPoseFromJSON')}.data.cameras.length === ${camsAfter.length}`);
  const added = camsAfter.length - 1;
  // the same view through the camera the core built from the list entry
  const through = await page.evaluate(`(() => { const v = ${viewerOf('PoseFactoryPoseFromJSON')}; v.lookThrough(${added});
    v.showPreview = true; v.draw(); return v.previewKeypoints(); })()`);
  await page.screenshot({ path: path.join(OUT, 'posed.png') });
  await focusNode(page, 'PoseFactoryPoseFromJSON');
  await page.screenshot({ path: path.join(OUT, 'posed_viewer.png') });
  // the depth and normal previews of that view: background, subject, near brighter than far (the
  // keypoints' depths along the view axis, computed here from the core's camera, not by three.js)
  for (const mode of ['depth', 'normal']) {
    const inset = await page.evaluate(`(() => { const v = ${viewerOf('PoseFactoryPoseFromJSON')}; v.setPreviewMode("${mode}");
      const { width: w, height: h } = v.preview, px = v.preview.getContext("2d").getImageData(0, 0, w, h).data;
      const at = (x, y) => { const i = 4 * (Math.round(y) * w + Math.round(x)); return [px[i], px[i + 1], px[i + 2]]; };
      const bg = ${mode === 'depth' ? '[0, 0, 0]' : '[128, 128, 255]'};
      let subject = 0, lo = 255, hi = 0;
      for (let i = 0; i < px.length; i += 4) {
        if (px[i] === bg[0] && px[i + 1] === bg[1] && px[i + 2] === bg[2]) continue;
        subject++; lo = Math.min(lo, px[i]); hi = Math.max(hi, px[i]);
      }
      const cam = v.currentCamera(), kp = v.previewKeypoints().keypoints, r = cam.rotation, l = cam.location;
      const pts = kp.map((p, i) => { const k = v.data.keypoints.slice(3 * i, 3 * i + 3);
        const depth = -[0, 1, 2].reduce((s, j) => s + (k[j] - l[j]) * r[j][2], 0);
        return { depth, value: p[2] && p[0] >= 0 && p[0] < w && p[1] >= 0 && p[1] < h ? at(p[0], p[1])[0] : null }; })
        .filter((p) => p.value != null && p.value > 0);
      let pairs = 0, ordered = 0;
      for (const a of pts) for (const b of pts) if (a.depth + 0.2 < b.depth) { pairs++; if (a.value > b.value) ordered++; }
      return { label: v.previewLabel.textContent, size: [w, h], corners: [at(0, 0), at(w - 1, 0), at(0, h - 1), at(w - 1, h - 1)],
        bg, subject, lo, hi, pairs, ordered, png: v.preview.toDataURL("image/png") }; })()`);
    fs.writeFileSync(path.join(OUT, `${mode}_preview.png`), Buffer.from(inset.png.split(',')[1], 'base64'));
    delete inset.png;
    await page.screenshot({ path: path.join(OUT, `posed_viewer_${mode}.png`) });
    const cornersBg = inset.corners.every((c) => c.every((x, i) => x === inset.bg[i]));
    const enough = inset.subject > 0.01 * inset.size[0] * inset.size[1];
    check(`${mode}_preview_draws`, inset.label === `${mode[0].toUpperCase()}${mode.slice(1)} preview` && cornersBg && enough
      && (mode !== 'depth' || (inset.lo === 38 && inset.hi === 255 && inset.pairs >= 3 && inset.ordered / inset.pairs >= 0.8)), inset);
  }
  await page.evaluate(`${viewerOf('PoseFactoryPoseFromJSON')}.setPreviewMode("openpose")`);

  // 4. queue and compare with the rendered keypoints
  // (with the depth and normal passes, depth ranged per image as the previews are)
  await page.evaluate(() => {
    const n = window.app.graph._nodes.find((x) => x.comfyClass === 'PoseFactoryRequestPoseBatch');
    for (const [name, value] of [['depth', true], ['normal', true], ['depth_range', 'image']]) n.widgets.find((w) => w.name === name).value = value;
  });
  const promptId = await page.evaluate(async () => {
    const r = await window.app.queuePrompt(0, 1);
    return r?.prompt_id ?? null;
  });
  let history = null;
  for (let i = 0; i < 600 && !history; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    const all = await (await fetch(`${URL_}/history`)).json();
    const entries = Object.values(all);
    const done = promptId ? all[promptId] : entries[entries.length - 1];
    if (done?.status?.completed || done?.status?.status_str === 'error') history = done;
  }
  check('prompt_ran', history?.status?.status_str === 'success', history?.status);
  const batches = await (await fetch(`${URL_}/pose_factory/projects/examples/batches`)).json();
  const bid = batches.batches?.[0]?.batch_id;
  const manifest = await (await fetch(`${URL_}/pose_factory/batches/examples/${bid}/manifest`)).json();
  const entry = manifest.entries?.find((e) => e.view === added && e.frame === 0);
  let worst = null, compared = 0;
  if (entry && STORAGE) {
    const file = path.join(STORAGE, 'projects', 'examples', 'batches', bid, entry.files.keypoints.key);
    const kp = JSON.parse(fs.readFileSync(file, 'utf8'));
    const body = (kp.people ?? kp[0]?.people)[0].pose_keypoints_2d;
    const diffs = (pv) => pv.keypoints.map((p, i) => (body[3 * i + 2] >= 1 ? Math.hypot(p[0] - body[3 * i], p[1] - body[3 * i + 1]) : null)).filter((d) => d !== null);
    const a = diffs(preview), b = diffs(through);
    compared = a.length;
    worst = { free_view_preview_px: Math.max(...a), camera_list_view_preview_px: Math.max(...b) };
  }
  check('render_matches_preview_within_2px', worst && compared >= 10 && worst.free_view_preview_px <= TOLERANCE_PX
    && worst.camera_list_view_preview_px <= TOLERANCE_PX, { batch_id: bid, view: added, visible_points: compared, worst });

  // the depth and normal previews of the added view against the worker's images of it
  for (const mode of ['depth', 'normal']) {
    const key = entry?.files?.[mode]?.key;
    if (!key || !STORAGE) { check(`${mode}_preview_matches_render`, false, { files: Object.keys(entry?.files ?? {}) }); continue; }
    const png = fs.readFileSync(path.join(STORAGE, 'projects', 'examples', 'batches', bid, key)).toString('base64');
    const cmp = await page.evaluate(`(async () => { const v = ${viewerOf('PoseFactoryPoseFromJSON')}; v.lookThrough(${added}); v.setPreviewMode("${mode}");
      const { width: w, height: h } = v.preview, a = v.preview.getContext("2d").getImageData(0, 0, w, h).data;
      const img = new Image(); img.src = "data:image/png;base64,${png}"; await img.decode();
      const c = document.createElement("canvas"); c.width = img.width; c.height = img.height;
      const g = c.getContext("2d"); g.drawImage(img, 0, 0); const b = g.getImageData(0, 0, c.width, c.height).data;
      if (c.width !== w || c.height !== h) return { size: [w, h], render: [c.width, c.height] };
      const bg = ${mode === 'depth' ? '[0, 0, 0]' : '[128, 128, 255]'};
      const isBg = (d, i) => d[i] === bg[0] && d[i + 1] === bg[1] && d[i + 2] === bg[2];
      let both = 0, either = 0, diff = 0;
      for (let i = 0; i < a.length; i += 4) {
        const pa = !isBg(a, i), pb = !isBg(b, i);
        if (pa || pb) either++;
        if (pa && pb) { both++; diff += (Math.abs(a[i] - b[i]) + Math.abs(a[i + 1] - b[i + 1]) + Math.abs(a[i + 2] - b[i + 2])) / 3; }
      }
      v.setPreviewMode("openpose");
      return { size: [w, h], subject_iou: both / Math.max(1, either), mean_abs_diff_8bit: diff / Math.max(1, both) }; })()`);
    report.figures = { ...(report.figures ?? {}), [`${mode}_vs_render`]: cmp };
    check(`${mode}_preview_matches_render`, cmp.subject_iou >= 0.9 && cmp.mean_abs_diff_8bit <= 12, cmp);
  }

  // 5. collapsed: no drawing at all
  const collapsed = await page.evaluate(async () => {
    const v = [...window.__poseFactoryViewer.viewers].find((x) => x.node.graph && x.node.comfyClass === 'PoseFactoryRequestPoseBatch');
    v.node.collapse(true);
    await new Promise((r) => setTimeout(r, 300));
    const n = v.draws;
    window.__poseFactoryViewer.refreshAll();
    v.draw();
    await new Promise((r) => setTimeout(r, 1500));
    const after = v.draws;
    v.node.collapse(false);
    return { before: n, after };
  });
  check('collapsed_draws_nothing', collapsed.before === collapsed.after, collapsed);
  check('no_console_errors_classic', errors.length === 0, errors.slice(0, 10));
  closeBrowser = null;
  await close();

  // the Vue node renderer
  ({ page, errors, close } = await open(URL_, { vueNodes: true }));
  closeBrowser = close;
  await loadWorkflow(page, WORKFLOW);
  await page.waitForTimeout(1500);
  const vue = await page.evaluate(() => {
    const vs = [...window.__poseFactoryViewer.viewers].filter((v) => v.node.graph);
    return { vueNodes: window.app.extensionManager?.setting?.get?.('Comfy.VueNodes.Enabled'),
      viewers: vs.map((v) => ({ type: v.node.comfyClass, error: v.error ?? null, draws: v.draws ?? 0,
        size: [v.canvas.width, v.canvas.height] })) };
  });
  check('vue_nodes_viewers_draw', vue.vueNodes === true && vue.viewers.length >= 4
    && vue.viewers.every((v) => !v.error && v.draws > 0 && v.size[0] > 50), vue);
  // picking works inside a Vue node too (the node must not take the press for a drag)
  await focusNode(page, 'PoseFactoryPoseFromJSON');
  const vat = await page.evaluate(`(() => { const v = ${viewerOf('PoseFactoryPoseFromJSON')};
    const dot = v.jointDots.children.find((d) => d.userData.joint === "l_elbow");
    const p = dot.position.clone().project(v.camera); const r = v.canvas.getBoundingClientRect();
    return [r.left + (p.x + 1) / 2 * r.width, r.top + (1 - p.y) / 2 * r.height]; })()`);
  const vunder = await page.evaluate(([x, y]) => { const e = document.elementFromPoint(x, y);
    return e ? `${e.tagName}.${e.className}` : null; }, vat);
  await page.mouse.click(vat[0], vat[1]);
  await page.waitForTimeout(300);
  const vsel = await page.evaluate(`${viewerOf('PoseFactoryPoseFromJSON')}.selected`);
  check('vue_nodes_left_elbow_selected_by_click', vsel === 'l_elbow', { selected: vsel, at: vat, under: vunder });
  await page.screenshot({ path: path.join(OUT, 'vue.png') });
  check('no_console_errors_vue', errors.length === 0, errors.slice(0, 10));
  closeBrowser = null;
  await close();
}

main().catch((e) => { check('script', false, String((e && e.stack) || e)); }).finally(async () => {
  if (closeBrowser) await closeBrowser().catch(() => {});
  fs.mkdirSync(OUT, { recursive: true });
  fs.writeFileSync(path.join(OUT, 'report.json'), JSON.stringify(report, null, 1));
  console.log(JSON.stringify(report, null, 1));
  process.exit(report.ok ? 0 : 1);
});
