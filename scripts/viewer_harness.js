// Shared by scripts/viewer_harness_check.js and bench/bench_viewer.js: headless Chromium (the
// shared harness's playwright-core) on a running ComfyUI, console errors counted as ui_shot.js does.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');

const H = process.env.COMFY_HARNESS || path.join(os.homedir(), '.cache', 'comfy-harness');
const ROOT = path.resolve(__dirname, '..');

function playwright() {
  for (const cand of [process.env.PLAYWRIGHT_CORE, path.join(H, 'pw/node_modules/playwright-core'), 'playwright-core']) {
    if (!cand) continue;
    try { return require(cand); } catch (e) { /* next */ }
  }
  throw new Error('playwright-core not found (the shared harness: setup.sh)');
}

// Errors a fresh offline harness always shows, unrelated to the pack (as ui_shot.js lists them).
const NOISE = [
  (t, u) => /Failed to load resource/.test(t) && /\/(api\/)?userdata|\/user\.css/.test(u),
  (t) => /Content Security Policy/.test(t),
  (t) => /ComfyApp graph accessed before initialization/.test(t),
];

async function open(url, { width = 1600, height = 1000, vueNodes = false } = {}) {
  const pw = playwright();
  await fetch(url + '/api/settings', { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ 'Comfy.TutorialCompleted': true, 'Comfy.VueNodes.Enabled': vueNodes }) });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pose-factory-viewer-'));
  const context = await pw.chromium.launchPersistentContext(dir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, viewport: { width, height },
    args: ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage', '--use-angle=swiftshader',
      '--enable-unsafe-swiftshader'],
  });
  const page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(120000);
  const errors = [];
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const loc = (m.location() && m.location().url) || '';
    if (!NOISE.some((f) => f(m.text(), loc))) errors.push(m.text() + (loc ? ' @ ' + loc : ''));
  });
  page.on('pageerror', (e) => errors.push(String((e && e.stack) || e)));
  await page.goto(url + '/', { waitUntil: 'domcontentloaded' });
  await page.waitForFunction(() => window.app && window.app.graph && window.__poseFactoryViewer);
  const close = async () => { await context.close(); fs.rmSync(dir, { recursive: true, force: true }); };
  return { page, errors, close };
}

async function loadWorkflow(page, file) {
  const wf = JSON.parse(fs.readFileSync(file, 'utf8'));
  await page.evaluate(async (w) => { await window.app.loadGraphData(w); }, wf);
  await page.evaluate(async () => { await window.app.extensionManager.command.execute('Comfy.Canvas.FitView'); });
  // every viewer has its scene (or an error to report) and has drawn it at its current size (the
  // fit above resizes the nodes: a click computed before the redraw would miss)
  await page.waitForTimeout(500);
  await page.waitForFunction(() => {
    const vs = [...window.__poseFactoryViewer.viewers].filter((v) => v.node.graph);
    // (a viewer the page hides at this zoom draws when it shows again)
    return vs.length > 0 && vs.every((v) => (v.data || v.error) && (!v.visible || (v.canvas.width === v.canvas.clientWidth
      && v.canvas.height === v.canvas.clientHeight)));
  });
}

// Puts a node at scale 1 near the top left of the canvas (readable screenshots, larger targets)
// and waits until every viewer has redrawn at its new size.
async function focusNode(page, type) {
  // the Vue renderer may still fit the freshly loaded graph to the view after the first try: again
  // until the canvas stays at scale 1 on the node
  for (let i = 0; i < 10; i++) {
    await page.evaluate((t) => {
      const node = window.app.graph._nodes.find((n) => n.comfyClass === t);
      const ds = window.app.canvas.ds;
      ds.scale = 1;
      ds.offset = [-node.pos[0] + 80, -node.pos[1] + 60];
      window.app.canvas.setDirty(true, true);
    }, type);
    await page.waitForTimeout(500);
    if (await page.evaluate(() => window.app.canvas.ds.scale === 1)) break;
  }
  await page.waitForFunction(() => [...window.__poseFactoryViewer.viewers].filter((v) => v.node.graph && v.visible)
    .every((v) => v.canvas.width === v.canvas.clientWidth && v.canvas.height === v.canvas.clientHeight));
}

module.exports = { open, loadWorkflow, focusNode, ROOT };
