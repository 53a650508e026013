#!/usr/bin/env node
// Prints the 3D viewer's JS bundle size and its frame time for a 50k-triangle figure in headless
// Chromium (software WebGL: SwiftShader, no GPU), on a running ComfyUI with the pack
// (bench/bench_viewer.sh starts one). The figure: the served mannequin tiled 3 times side by side
// (3 x 17,512 = 52,536 triangles), skinned by the viewer as usual. A frame = turn the view, render
// into the shared WebGL canvas and copy it into the node's canvas (Viewer.draw), timed until a pixel
// of the node's canvas can be read back (so deferred GPU work is counted).
//
//   node bench/bench_viewer.js [--url http://127.0.0.1:8188] [--frames 60]
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const { open, ROOT } = require('../scripts/viewer_harness.js');

const args = process.argv.slice(2);
const arg = (name, dflt) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : dflt; };
const URL_ = arg('--url', 'http://127.0.0.1:8188').replace(/\/$/, '');
const FRAMES = Number(arg('--frames', 60));

function size(file) {
  const data = fs.readFileSync(path.join(ROOT, file));
  return { file, bytes: data.length, gzip_bytes: zlib.gzipSync(data, { level: 9 }).length };
}

(async () => {
  for (const f of ['web/js/vendor/three.module.min.js', 'web/js/viewer.js']) {
    const s = size(f);
    console.log(`${s.file}: ${(s.bytes / 1024).toFixed(1)} KiB (${(s.gzip_bytes / 1024).toFixed(1)} KiB gzipped)`);
  }
  const { page, errors, close } = await open(URL_, { width: 1280, height: 900 });
  try {
    const r = await page.evaluate(async (frames) => {
      const { app } = window;
      app.graph.clear();
      const node = window.LiteGraph.createNode('PoseFactoryPoseFromJSON');
      node.pos = [100, 100];
      app.graph.add(node);
      node.setSize([640, 720]);
      await window.app.extensionManager.command.execute('Comfy.Canvas.FitView');
      const v = node.__poseFactoryViewer;
      for (let i = 0; i < 200 && !v.data; i++) await new Promise((res) => setTimeout(res, 100));
      const m = v.meshData;
      const copies = [-0.7, 0, 0.7];
      const nv = m.vertex_joint.length;
      const big = { ...m, vertices: [], vertex_joint: [], triangles: [], triangle_part: [] };
      copies.forEach((dx, c) => {
        for (let i = 0; i < nv; i++) big.vertices.push(m.vertices[3 * i] + dx, m.vertices[3 * i + 1], m.vertices[3 * i + 2]);
        big.vertex_joint.push(...m.vertex_joint);
        big.triangles.push(...m.triangles.map((t) => t + c * nv));
        big.triangle_part.push(...m.triangle_part);
      });
      v.setMesh(big); // each copy's vertices move with the figure's joints, 0.7 m apart
      const t0 = performance.now();
      v.pose(v.data);
      const poseMs = performance.now() - t0;
      const triangles = big.triangles.length / 3;
      v.draw(); // warm-up
      const times = [];
      for (let i = 0; i < frames; i++) {
        v.camera.position.applyAxisAngle(new window.__poseFactoryViewer.THREE.Vector3(0, 0, 1), 0.05);
        v.camera.lookAt(v.controls.target);
        const s = performance.now();
        v.draw();
        v.canvas.getContext('2d').getImageData(0, 0, 1, 1); // wait until the frame is really drawn
        times.push(performance.now() - s);
      }
      times.sort((a, b) => a - b);
      return { triangles, canvas: [v.canvas.width, v.canvas.height], poseMs, frames,
        mean: times.reduce((a, b) => a + b, 0) / times.length, median: times[Math.floor(times.length / 2)],
        p95: times[Math.floor(times.length * 0.95)], renderer: (() => {
          const c = document.createElement('canvas').getContext('webgl2');
          const ext = c && c.getExtension('WEBGL_debug_renderer_info');
          return ext ? c.getParameter(ext.UNMASKED_RENDERER_WEBGL) : 'unknown';
        })() };
    }, FRAMES);
    console.log(`figure: ${r.triangles} triangles, viewer canvas ${r.canvas[0]}x${r.canvas[1]} px, WebGL: ${r.renderer}`);
    console.log(`frame (render + copy into the node): mean ${r.mean.toFixed(1)} ms, median ${r.median.toFixed(1)} ms, `
      + `p95 ${r.p95.toFixed(1)} ms over ${r.frames} frames (${(1000 / r.median).toFixed(0)} fps at the median)`);
    console.log(`new pose (skin ${r.triangles} triangles' vertices + normals): ${r.poseMs.toFixed(1)} ms`);
    if (errors.length) console.log(`console errors: ${errors.length}: ${errors.slice(0, 3).join(' | ')}`);
  } finally {
    await close();
  }
})().catch((e) => { console.error(e); process.exit(1); });
