// The 3D viewer after a run (issue 21, point 8), run by scripts/viewer_harness_check.js in a real ComfyUI
// with the local worker (renders):
//   props: a box .obj written into ComfyUI's input folder, placed by a Pose Prop node chained into
//     Request Pose Batch's props (moved, turned, scaled)
//     prop_drawn                        the viewer shows one prop mesh, and says nothing is missing
//     prop_depth_preview_matches_render the worker's depth image of view 0 against the browser's depth
//                                       preview of that view: subject IoU >= 0.9, mean absolute
//                                       difference <= 12 of 255 (the preview without the prop, shown
//                                       for comparison, does not match)
//   post-run poses: a two-frame BVH (joints named as the mannequin's, written here from the rig's rest
//     joints) in a Motion Clip feeding Request Pose Batch
//     motion_clip_default_before_the_run  before the run the viewer shows the default and says why
//     motion_clip_pose_shown_after_the_run after the run the viewer shows the clip's frames: the pose
//                                       of each frame is the one the worker rendered (the batch's manifest)
//     motion_clip_changed_shows_the_default_again  the clip's step changed since: the default and the note again
'use strict';
const fs = require('fs');
const path = require('path');

const V = (type) => `[...window.__poseFactoryViewer.viewers].find((v) => v.node.graph && v.node.comfyClass === ${JSON.stringify(type)})`;
const REQ = V('PoseFactoryRequestPoseBatch');

// a box 0.4 x 0.3 x 0.9 m standing on the floor at the origin, written Y up as .obj files are
function boxObj() {
  const [a, b, c] = [0.2, 0.15, 0.9];
  const v = [];
  for (const x of [-a, a]) for (const y of [-b, b]) for (const z of [0, c]) v.push([x, z, -y]); // Z up -> Y up
  const f = [[1, 3, 4, 2], [5, 6, 8, 7], [1, 2, 6, 5], [3, 7, 8, 4], [1, 5, 7, 3], [2, 4, 8, 6]];
  return v.map((p) => `v ${p.join(' ')}`).join('\n') + '\n' + f.map((q) => `f ${q.join(' ')}`).join('\n') + '\n';
}

// a BVH whose joints are the mannequin's (naming "mannequin"): offsets from the rig's rest joints
// (Z up -> BVH's Y up), frame 0 at rest, frame 1 with the left elbow and the right knee bent
function bvhText(mesh) {
  const names = mesh.joint_names, parents = mesh.parents, rest = mesh.rest;
  const at = (j) => [rest[3 * j], rest[3 * j + 1], rest[3 * j + 2]];
  const yUp = (p) => [p[0], p[2], -p[1]];
  const kids = names.map((_, j) => names.map((__, k) => k).filter((k) => parents[k] === j));
  const order = [];
  const lines = ['HIERARCHY'];
  const walk = (j, depth) => {
    const pad = '  '.repeat(depth);
    const p = parents[j] >= 0 ? at(parents[j]) : [0, 0, 0];
    const off = yUp(at(j).map((x, i) => x - p[i]));
    lines.push(`${pad}${parents[j] < 0 ? 'ROOT' : 'JOINT'} ${names[j]}`, `${pad}{`, `${pad}  OFFSET ${off.map((x) => x.toFixed(5)).join(' ')}`);
    lines.push(`${pad}  CHANNELS ${parents[j] < 0 ? '6 Xposition Yposition Zposition ' : '3 '}Zrotation Xrotation Yrotation`);
    order.push(j);
    if (!kids[j].length) lines.push(`${pad}  End Site`, `${pad}  {`, `${pad}    OFFSET 0.00000 0.05000 0.00000`, `${pad}  }`);
    for (const k of kids[j]) walk(k, depth + 1);
    lines.push(`${pad}}`);
  };
  walk(parents.indexOf(-1), 0);
  const frame = (bend) => order.map((j) => {
    const rot = bend && names[j] === 'l_elbow' ? [0, 60, 0] : bend && names[j] === 'r_knee' ? [0, -45, 0] : [0, 0, 0];
    return (parents[j] < 0 ? [...yUp(at(j)), ...rot] : rot).map((x) => x.toFixed(4)).join(' ');
  }).join(' ');
  lines.push('MOTION', 'Frames: 2', 'Frame Time: 0.0333333', frame(false), frame(true));
  return lines.join('\n') + '\n';
}

// queues the graph from the page and waits for its history entry (the first one not there before)
async function queue(page, url) {
  const seen = new Set(Object.keys(await (await fetch(`${url}/history`)).json()));
  await page.evaluate(async () => { await window.app.queuePrompt(0, 1); });
  for (let i = 0; i < 900; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    const all = await (await fetch(`${url}/history`)).json();
    const done = Object.entries(all).find(([id]) => !seen.has(id))?.[1];
    if (done?.status?.completed || done?.status?.status_str === 'error') return done;
  }
  return null;
}

// the batch of the examples project whose manifest's spec passes test (the run's own)
async function findBatch(url, test) {
  const batches = await (await fetch(`${url}/pose_factory/projects/examples/batches`)).json();
  for (const b of batches.batches ?? []) {
    const manifest = await (await fetch(`${url}/pose_factory/batches/examples/${b.batch_id}/manifest`)).json();
    if (manifest?.spec && test(manifest.spec)) return { bid: b.batch_id, manifest };
  }
  return { bid: null, manifest: null };
}

async function runChecks(page, check, { url, storage, input, out, loadWorkflow, focusNode, workflow, report }) {
  // --- a prop
  const dir = path.join(input, 'pf_viewer_check');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'box.obj'), boxObj());
  await loadWorkflow(page, workflow);
  await page.evaluate(() => {
    const g = window.app.graph, req = g._nodes.find((n) => n.comfyClass === 'PoseFactoryRequestPoseBatch');
    const prop = window.LiteGraph.createNode('PoseFactoryPoseProp');
    prop.pos = [req.pos[0] - 500, req.pos[1] + 700];
    g.add(prop);
    const set = (k, v) => { prop.widgets.find((w) => w.name === k).value = v; };
    set('mesh_file', 'pf_viewer_check/box.obj'); set('location_x', 0.55); set('location_y', -0.15);
    set('rotation_z', 30); set('scale', 1.1); set('shading', 'flat');
    prop.connect(0, req, req.inputs.findIndex((i) => i.name === 'props'));
    for (const [k, v] of [['depth', true], ['normal', false], ['depth_range', 'image']]) req.widgets.find((w) => w.name === k).value = v;
  });
  await page.waitForFunction(`${REQ}.props.children.length === 1 || !!${REQ}.error`, null, { timeout: 30000 }).catch(() => {});
  const drawn = await page.evaluate(`(() => { const v = ${REQ}; return { props: v.props.children.length, error: v.error, note: v.note,
    triangles: v.props.children[0] ? v.props.children[0].geometry.attributes.position.count / 3 : 0 }; })()`);
  check('prop_drawn', drawn.props === 1 && drawn.triangles === 12 && !drawn.error && !/prop/.test(drawn.note || ''), drawn);
  const run = await queue(page, url);
  await focusNode(page, 'PoseFactoryRequestPoseBatch'); // a viewer off screen draws nothing
  check('prop_prompt_ran', run?.status?.status_str === 'success', run?.status);
  const { bid, manifest } = await findBatch(url, (spec) => spec.props?.length === 1 && spec.props[0].mesh.format === 'obj'
    && spec.props[0].rotation[2] === 30 && spec.render.passes.includes('depth') && spec.render.depth_range === 'image');
  const entry = manifest?.entries?.find((e) => e.view === 0 && e.frame === 0);
  const key = entry?.files?.depth?.key;
  if (!key) check('prop_depth_preview_matches_render', false, { bid, files: Object.keys(entry?.files ?? {}) });
  else {
    const png = fs.readFileSync(path.join(storage, 'projects', 'examples', 'batches', bid, key)).toString('base64');
    const cmp = await page.evaluate(`(async () => { const v = ${REQ};
      const img = new Image(); img.src = "data:image/png;base64,${png}"; await img.decode();
      const c = document.createElement("canvas"); c.width = img.width; c.height = img.height;
      const g = c.getContext("2d"); g.drawImage(img, 0, 0); const b = g.getImageData(0, 0, c.width, c.height).data;
      const compare = () => { v.lookThrough(0); v.setPreviewMode("depth");
        const { width: w, height: h } = v.preview, a = v.preview.getContext("2d").getImageData(0, 0, w, h).data;
        if (w !== c.width || h !== c.height) return { size: [w, h], render: [c.width, c.height] };
        let both = 0, either = 0, diff = 0;
        for (let i = 0; i < a.length; i += 4) { const pa = a[i] > 0, pb = b[i] > 0; if (pa || pb) either++;
          if (pa && pb) { both++; diff += Math.abs(a[i] - b[i]); } }
        return { subject_iou: both / Math.max(1, either), mean_abs_diff_8bit: diff / Math.max(1, both), png: v.preview.toDataURL("image/png") }; };
      const withProp = compare();
      v.props.visible = false; const hidden = v.props.children.map((m) => m.geometry); const kept = [...v.props.children];
      v.props.clear(); const without = compare(); for (const m of kept) v.props.add(m); v.props.visible = true;
      v.setPreviewMode("openpose"); v.showPreview = false; v.freeView();
      return { with_prop: withProp, without_prop: without }; })()`);
    for (const k of ['with_prop', 'without_prop']) {
      if (out && cmp[k].png) fs.writeFileSync(path.join(out, `prop_depth_preview_${k}.png`), Buffer.from(cmp[k].png.split(',')[1], 'base64'));
      delete cmp[k].png;
    }
    report.figures = { ...(report.figures ?? {}), prop_depth_vs_render: cmp };
    check('prop_depth_preview_matches_render', cmp.with_prop.subject_iou >= 0.9 && cmp.with_prop.mean_abs_diff_8bit <= 12
      && cmp.without_prop.subject_iou < 0.9, { batch_id: bid, ...cmp });
  }

  // --- poses known only after the run: a Motion Clip
  const mesh = await (await fetch(`${url}/pose_factory/viewer/mesh`)).json();
  fs.writeFileSync(path.join(dir, 'bend.bvh'), bvhText(mesh));
  await fetch(`${url}/object_info/PoseFactoryMotionClip`); // the clip list is read when the node is made
  await loadWorkflow(page, workflow);
  await page.evaluate(() => {
    const g = window.app.graph, req = g._nodes.find((n) => n.comfyClass === 'PoseFactoryRequestPoseBatch');
    const clip = window.LiteGraph.createNode('PoseFactoryMotionClip');
    clip.pos = [req.pos[0] - 500, req.pos[1] + 700];
    g.add(clip);
    clip.widgets.find((w) => w.name === 'path_or_key').value = '';
    const w = clip.widgets.find((x) => x.name === 'clip');
    w.value = 'pf_viewer_check/bend.bvh';
    clip.widgets.find((x) => x.name === 'naming').value = 'mannequin';
    clip.connect(0, req, req.inputs.findIndex((i) => i.name === 'poses'));
    for (const [k, v] of [['depth', false], ['normal', false], ['shaded', false]]) req.widgets.find((x) => x.name === k).value = v;
  });
  await page.waitForTimeout(2500);
  const pre = await page.evaluate(`(() => { const v = ${REQ}; return { frames: v.data && v.data.frames, note: v.note, error: v.error }; })()`);
  check('motion_clip_default_before_the_run', pre.frames === 1 && /known when the prompt runs/.test(pre.note || ''), pre);
  const ran = await queue(page, url);
  check('motion_clip_prompt_ran', ran?.status?.status_str === 'success', ran?.status);
  await page.waitForFunction(`${REQ}.data && ${REQ}.data.frames === 2`, null, { timeout: 20000 }).catch(() => {});
  const { bid: clipBatch, manifest: clipManifest } = await findBatch(url, (spec) => spec.subjects[0].poses.length === 2
    && !spec.props?.length && JSON.stringify(spec.subjects[0].poses).includes('r_ankle'));
  const rendered = clipManifest?.spec?.subjects?.[0]?.poses ?? [];
  const shown = [];
  for (const f of [0, 1]) {
    await page.evaluate(`(() => { const v = ${REQ}; v.frame = ${f}; v.refresh(); })()`);
    await page.waitForFunction(`${REQ}.data && ${REQ}.data.frame === ${f}`, null, { timeout: 20000 }).catch(() => {});
    shown.push(await page.evaluate(`(() => { const v = ${REQ}; return { pose: v.data.pose, note: v.note }; })()`));
  }
  const canon = (x) => (Array.isArray(x) ? x.map(canon) : x && typeof x === 'object'
    ? Object.fromEntries(Object.keys(x).sort().map((k) => [k, canon(x[k])])) : x);
  const same = (a, b) => JSON.stringify(canon(a)) === JSON.stringify(canon(b));
  check('motion_clip_pose_shown_after_the_run', rendered.length === 2 && shown.every((s, f) => same(s.pose, rendered[f]) && !s.note)
    && !same(shown[0].pose, shown[1].pose), { batch_id: clipBatch, shown, rendered });
  await page.evaluate(`(() => { const v = ${REQ}; v.frame = 0; v.refresh(); })()`);
  // the clip's inputs changed since the run (a node without a viewer): the default again, and why
  await page.evaluate(() => {
    const clip = window.app.graph._nodes.find((n) => n.comfyClass === 'PoseFactoryMotionClip');
    const w = clip.widgets.find((x) => x.name === 'step');
    w.value = 2; w.callback && w.callback(2);
  });
  await page.waitForTimeout(2500);
  const changed = await page.evaluate(`(() => { const v = ${REQ}; return { frames: v.data && v.data.frames, note: v.note }; })()`);
  check('motion_clip_changed_shows_the_default_again', changed.frames === 1 && /known when the prompt runs/.test(changed.note || ''), changed);
  fs.rmSync(dir, { recursive: true, force: true });
}

module.exports = { runChecks, bvhText, boxObj, queue };
