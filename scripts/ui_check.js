#!/usr/bin/env node
// The pack in a real ComfyUI front end (headless Chromium through playwright-core, as the shared
// harness's ui_shot.js), for what only a browser shows. CI cannot run it: run it by hand against a
// ComfyUI that has this pack loaded (../shared/tools/comfy_harness/run_server.sh), with a local
// storage config, e.g. POSE_FACTORY_CONFIG pointing at a scratch folder. Checks, in the classic
// canvas and in the Vue node renderer ("Nodes 2.0", setting Comfy.VueNodes.Enabled):
//   templates  the pack's templates are listed by their titles (/api/workflow_templates); a
//              screenshot of the Templates dialog
//   previews   the no-model template runs from the UI; the loaders show their preview and no two
//              nodes' boxes overlap (canvas: node.getBounding(); Vue: the nodes' DOM rectangles);
//              after a page reload the same run is served from the cache and the loaders show
//              their previews again
//   sidebar    the "Pose batches" tab lists every batch of /pose_factory/projects/*/batches;
//              clicking one sets a selected new Load Pose Batch's project and batch widgets; a
//              forced re-render shows its job's progress in the tab
//   models     an SDXL template opens with the missing-models panel offering a download per model
//   photo      "Photo to pose" runs on its first click with no error: its Load Image nodes name the
//              pack's example photos, which the pack copied into ComfyUI's input folder when it loaded
//              (run the server with a FRESH --input-directory to check a new user's first run); the
//              extracted skeleton and the posture preview are shown; a photo with nobody on it gives a
//              toast with the reason; a batch where one image has nobody runs and warns which
//   newloader  (issue 21.3) a template renders a new batch (its size changed); a Load Pose Batch
//              added afterwards, without a page reload, lists it as project/batch and takes it,
//              the list holds only batches with keypoints, and "refresh batches" keeps it
//   projects   (issue 21.2) every node of the pack shows at most one project control; a storing
//              node's dropdown shows the project it uses (the default, or a template's "examples")
//              with new…/rename…; a loader's batch entry carries the project
//   projectui  (issue 21.2) through the dropdown itself (litegraph's menu; the Vue select): it lists
//              the known projects, "new…" creates one (the front end's prompt dialog) and the node
//              takes it, "rename…" renames it in storage and the node follows
//   cancel     (issue 21.6) a long forced render is cancelled with its cancel button in the
//              sidebar: the job shows cancelled, then leaves the list; nothing stays "rendering"
//   viewerUndo Ctrl+Z in the 3D viewer undoes the pose edit, not the graph (the same nodes stay, a
//              node moved before stays moved); Ctrl+Shift+Z redoes it
//   people     (issue 22) "Two people - no models" opens with no node over another and runs on its first
//              click; every preview shows an image (the loaders' person choice among them); Scene,
//              Custom Rig, the Mannequin's shape and the loaders' person widgets are there; a workflow
//              saved before issue 22 (main's no-model template: poses linked in its old slot, loaders
//              without person) still loads and runs
//   customrig  (issue 22) "Custom rig - no models" runs on its first click on the pack's template rig
//              (copied into input/3d/ when the pack loaded): the rig report is shown, every preview
//              has an image; a path_or_key that is no rig file is refused at queue time, naming it
//   hideJoints (issue 23.2) on the no-model template: Load Pose Batch's hide list takes the left arm
//              out of the 3D viewer's OpenPose preview (Request Pose Batch's viewer), un-hiding gives
//              the same preview back; the loader runs with it and shows its preview; an unknown name
//              is refused at queue time naming the allowed ones
// Screenshots and report.json go to --out-dir; --docs DIR also writes the README's screenshots
// there (graph.png, batch_browser.png, missing_models.png: classic canvas). Exit 0 when every
// check passed, 1 otherwise.
//
//   node scripts/ui_check.js [--url http://127.0.0.1:8188] [--out-dir out/ui_check] [--docs docs]
//                            [--renderer classic|vue|both]
//                            [--only templates,previews,sidebar,models,photo,newloader,projects,projectui,cancel,viewerUndo,
//                                    people,customrig,hideJoints]
'use strict';
const fs = require('fs');
const path = require('path');
const os = require('os');

const H = process.env.COMFY_HARNESS || path.join(os.homedir(), '.cache', 'comfy-harness');
let pw;
for (const cand of [process.env.PLAYWRIGHT_CORE, path.join(H, 'pw/node_modules/playwright-core'), 'playwright-core']) {
  if (!cand) continue;
  try { pw = require(cand); break; } catch (e) { /* next */ }
}
if (!pw) { console.error('playwright-core not found (run the harness setup.sh, or set PLAYWRIGHT_CORE)'); process.exit(2); }

const NO_MODEL = 'Pose preview - no models';
const SDXL = 'OpenPose to SDXL - 4 poses';
const LOADERS = ['PoseFactoryLoadPoseFromR2', 'PoseFactoryDepthNormalLoader'];
const CHECKS = ['templates', 'previews', 'sidebar', 'models', 'photo', 'newloader', 'projects', 'projectui', 'cancel',
  'viewerUndo', 'people', 'customrig', 'feet', 'hideJoints'];

function parseArgs(argv) {
  const o = { url: 'http://127.0.0.1:8188', outDir: 'out/ui_check', renderers: ['classic', 'vue'], only: CHECKS };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i], v = () => argv[++i];
    if (a === '--url') o.url = v().replace(/\/$/, '');
    else if (a === '--out-dir') o.outDir = v();
    else if (a === '--docs') o.docs = v();
    else if (a === '--renderer') { const r = v(); o.renderers = r === 'both' ? ['classic', 'vue'] : [r]; }
    else if (a === '--only') o.only = v().split(',');
    else if (a === '-h' || a === '--help') {
      console.log(fs.readFileSync(__filename, 'utf8').split('\n').slice(1, 42).map((l) => l.replace(/^\/\/ ?/, '')).join('\n'));
      process.exit(0);
    } else { console.error('unknown argument ' + a); process.exit(2); }
  }
  return o;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function getJson(url, init) {
  const r = await fetch(url, init);
  if (!r.ok) throw new Error(`${r.status} ${url}`);
  return r.json();
}

// Overlapping pairs among [{id, type, box: [x, y, w, h]}] (touching edges do not count).
function overlaps(nodes) {
  const out = [];
  for (let i = 0; i < nodes.length; i++) {
    for (let j = i + 1; j < nodes.length; j++) {
      const [ax, ay, aw, ah] = nodes[i].box, [bx, by, bw, bh] = nodes[j].box;
      const dx = Math.min(ax + aw, bx + bw) - Math.max(ax, bx), dy = Math.min(ay + ah, by + bh) - Math.max(ay, by);
      if (dx > 1 && dy > 1) out.push(`#${nodes[i].id} ${nodes[i].type} / #${nodes[j].id} ${nodes[j].type} (${Math.round(dx)}x${Math.round(dy)})`);
    }
  }
  return out;
}

class Session {
  constructor(o, renderer, report) {
    this.o = o; this.renderer = renderer; this.report = report;
    this.vue = renderer === 'vue';
  }

  check(name, ok, detail) {
    this.report.checks.push({ renderer: this.renderer, name, ok: !!ok, detail });
    console.log(`${ok ? 'ok  ' : 'FAIL'} [${this.renderer}] ${name}${detail !== undefined ? ': ' + (typeof detail === 'string' ? detail : JSON.stringify(detail)) : ''}`);
  }

  async shot(name) {
    const file = path.join(this.o.outDir, `${this.renderer}_${name}.png`);
    await this.page.screenshot({ path: file });
    this.report.screenshots.push(file);
    return file;
  }

  // A README screenshot (classic canvas only): the page as it is, or the whole graph at a zoom
  // where LiteGraph draws text (graph: true).
  async docShot(name, { graph = false } = {}) {
    if (!this.o.docs || this.vue) return;
    const file = path.join(this.o.docs, name);
    if (!graph) { await this.page.screenshot({ path: file }); return; }
    const scale = 0.62;
    await this.page.evaluate(() => window.app.extensionManager.setting.set('Comfy.RightSidePanel.IsOpen', false));
    const size = await this.page.evaluate((scale) => {
      const nodes = window.app.graph._nodes ?? window.app.graph.nodes;
      const b = nodes.map((n) => n.getBounding());
      const x0 = Math.min(...b.map((r) => r[0])), y0 = Math.min(...b.map((r) => r[1]));
      const x1 = Math.max(...b.map((r) => r[0] + r[2])), y1 = Math.max(...b.map((r) => r[1] + r[3]));
      return { x0, y0, w: Math.ceil((x1 - x0) * scale), h: Math.ceil((y1 - y0) * scale) };
    }, scale);
    const margin = 80;
    await this.page.setViewportSize({ width: size.w + 2 * margin, height: size.h + 2 * margin });
    await sleep(800);
    const box = await this.page.evaluate(({ size, scale, margin }) => {
      const ds = window.app.canvas.ds;
      const r = window.app.canvas.canvas.getBoundingClientRect();
      ds.scale = scale;
      ds.offset = [(margin - r.x + 10) / scale - size.x0, (margin - r.y + 10) / scale - size.y0];
      window.app.graph.setDirtyCanvas(true, true);
      return { x: margin + 10 - 10, y: margin + 10 - 10 };
    }, { size, scale, margin });
    await sleep(1000);
    await this.page.screenshot({ path: file, clip: { x: box.x, y: box.y, width: size.w + 20, height: size.h + 20 } });
    await this.page.setViewportSize({ width: 1600, height: 1000 });
    await sleep(500);
  }

  async open() {
    await fetch(this.o.url + '/api/settings', { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ 'Comfy.TutorialCompleted': true, 'Comfy.VueNodes.Enabled': this.vue,
        'Comfy.RightSidePanel.IsOpen': false, 'Comfy.Minimap.Visible': false }) });
    this.userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pf-ui-check-'));
    this.context = await pw.chromium.launchPersistentContext(this.userDataDir, {
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
      viewport: { width: 1600, height: 1000 },
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
    });
    const local = new URL(this.o.url).host;
    await this.context.route('**/*', (route) => {
      const u = new URL(route.request().url());
      return u.protocol.startsWith('http') && u.host !== local ? route.abort() : route.continue();
    });
    this.page = this.context.pages()[0] || await this.context.newPage();
    this.page.setDefaultTimeout(120000);
    this.page.on('pageerror', (e) => this.report.pageErrors.push(`[${this.renderer}] ${e}`));
    this.page.on('console', (m) => {
      // ours only; the CSP refusals of internet URLs are the offline harness (its README, pitfall 5)
      if (m.type() === 'error' && /pose_factory|PoseFactory|batch_browser/i.test(m.text() + (m.location()?.url ?? '')) &&
          !/Content Security Policy/.test(m.text())) {
        this.report.consoleErrors.push(`[${this.renderer}] ${m.text()} (${m.location()?.url ?? ''})`);
      }
    });
    this.page.on('response', async (r) => { // which of our requests failed, and what the server said
      if (r.status() >= 400 && /pose_factory/.test(r.url())) {
        const body = await r.text().catch(() => '');
        this.report.failedRequests = (this.report.failedRequests ?? []).concat(
          `[${this.renderer}] ${r.status()} ${r.request().method()} ${r.url()}: ${body.slice(0, 300)}`);
      }
    });
    await this.reload();
  }

  // An empty graph whose next node ids are new: litegraph's graph.clear() restarts them, and frontend
  // 1.49 then gives a new node the widget values an old node of that id had (a new Request Pose Batch
  // took a Mannequin's height 1.75, and the viewer's scene request was refused). A user's Clear
  // Workflow keeps counting; so does this.
  async clearGraph() {
    await this.page.evaluate(() => {
      const g = window.app.graph, last = Math.max(g.last_node_id ?? 0, g.state?.lastNodeId ?? 0);
      g.clear();
      if (g.state) g.state.lastNodeId = last;
      g.last_node_id = last;
    });
  }

  async reload() {
    await this.page.goto(this.o.url + '/', { waitUntil: 'domcontentloaded' });
    await this.page.waitForFunction(() => window.app?.graph && window.LiteGraph && window.__poseFactoryLoaded &&
      document.querySelector('canvas'));
    await sleep(1500);
  }

  async close() {
    await this.context?.close();
    if (this.userDataDir) fs.rmSync(this.userDataDir, { recursive: true, force: true });
  }

  // The template through the front end's own path: /api/workflow_templates/<pack>/<title>.json.
  async loadTemplate(title) {
    const res = await this.page.evaluate(async ({ module, title }) => {
      const resp = await fetch(`/api/workflow_templates/${module}/${encodeURIComponent(title)}.json`);
      if (!resp.ok) return { ok: false, error: `HTTP ${resp.status}` };
      await window.app.loadGraphData(await resp.json(), true, true, title);
      return { ok: true };
    }, { module: this.o.module, title });
    await sleep(1000);
    return res;
  }

  async fit() {
    await this.page.evaluate(() => window.app.extensionManager.command.execute('Comfy.Canvas.FitView'));
    await this.page.evaluate(() => window.app.graph.setDirtyCanvas(true, true));
    await sleep(800);
  }

  async queueAndWait() {
    const before = new Set(Object.keys(await getJson(this.o.url + '/api/history?max_items=10000')));
    await this.page.evaluate(() => window.app.queuePrompt(0, 1));
    const deadline = Date.now() + 600000;
    while (Date.now() < deadline) {
      const hist = await getJson(this.o.url + '/api/history?max_items=10000');
      const fresh = Object.keys(hist).filter((k) => !before.has(k));
      const e = fresh.length && hist[fresh[fresh.length - 1]];
      if (e?.status?.completed || ['success', 'error'].includes(e?.status?.status_str)) {
        await sleep(2500);
        const cached = (e.status.messages || []).find((m) => m[0] === 'execution_cached')?.[1]?.nodes ?? [];
        return { status: e.status.status_str, cached };
      }
      await sleep(500);
    }
    return { status: 'timeout', cached: [] };
  }

  // Every node's box and whether it shows images: canvas coordinates (classic), DOM pixels (Vue).
  async nodeBoxes() {
    return this.page.evaluate((vue) => (window.app.graph._nodes ?? window.app.graph.nodes).map((n) => {
      const out = { id: String(n.id), type: n.type };
      const el = document.querySelector(`[data-node-id="${n.id}"]`);
      if (vue && el) {
        const r = el.getBoundingClientRect();
        out.box = [r.x, r.y, r.width, r.height];
        out.images = [...el.querySelectorAll('img')].filter((i) => i.complete && i.naturalWidth > 0).length;
      } else {
        out.box = Array.from(n.getBounding());
        out.images = (n.imgs ?? []).filter((i) => i.complete && i.naturalWidth > 0).length;
      }
      return out;
    }), this.vue);
  }

  // The boxes once every loader's preview has loaded (or after 30 s).
  async boxesWithPreviews() {
    let nodes = [];
    for (let i = 0; i < 60; i++) {
      nodes = await this.nodeBoxes();
      if (nodes.filter((n) => LOADERS.includes(n.type)).every((n) => n.images > 0)) break;
      await sleep(500);
    }
    return nodes;
  }

  // --- the checks ---------------------------------------------------------------------------------
  async templates() {
    const listed = await getJson(this.o.url + '/api/workflow_templates');
    const names = listed[this.o.module] ?? [];
    this.check('templates listed by title', names.includes(NO_MODEL) && names.includes(SDXL), names);
    await this.page.evaluate(() => window.app.extensionManager.command.execute('Comfy.BrowseTemplates'));
    await sleep(2500);
    try {
      await this.page.getByRole('dialog').getByText(this.o.module, { exact: true }).first().click({ timeout: 5000 });
      await sleep(2000);
    } catch (e) { /* the dialog's layout: the screenshot shows what is there */ }
    const text = await this.page.evaluate(() => document.body.innerText);
    this.check('Templates dialog shows the titles', text.includes(NO_MODEL) && text.includes(SDXL));
    await this.shot('templates_dialog');
    await this.page.keyboard.press('Escape');
    await sleep(500);
  }

  async previews() {
    const load = await this.loadTemplate(NO_MODEL);
    this.check('no-model template loads', load.ok, load.error);
    const run = await this.queueAndWait();
    this.check('no-model template runs from the UI', run.status === 'success', run.status);
    await this.fit();
    let nodes = await this.boxesWithPreviews();
    let loaders = nodes.filter((n) => LOADERS.includes(n.type));
    this.check('loaders show their preview', loaders.length === 2 && loaders.every((n) => n.images > 0),
      loaders.map((n) => `#${n.id} ${n.images} image(s)`).join(', '));
    const bad = overlaps(nodes);
    this.check('no node overlaps another after the run', bad.length === 0, bad.length ? bad : `${nodes.length} nodes`);
    this.report.boxes[`${this.renderer}_run`] = nodes;
    await this.shot('previews_after_run');
    await this.docShot('graph.png', { graph: true });

    await this.reload(); // the previews are gone with the page; the server still has the outputs cached
    await this.loadTemplate(NO_MODEL);
    const again = await this.queueAndWait();
    const loaderIds = loaders.map((n) => n.id);
    this.check('re-run served from the cache', again.status === 'success' && loaderIds.every((id) => again.cached.includes(id)),
      `cached: ${again.cached.join(',')}`);
    await this.fit();
    nodes = await this.boxesWithPreviews();
    loaders = nodes.filter((n) => LOADERS.includes(n.type));
    this.check('loaders show their preview after a cached re-run', loaders.every((n) => n.images > 0),
      loaders.map((n) => `#${n.id} ${n.images} image(s)`).join(', '));
    const bad2 = overlaps(nodes);
    this.check('no node overlaps another after the cached re-run', bad2.length === 0, bad2.length ? bad2 : `${nodes.length} nodes`);
    this.report.boxes[`${this.renderer}_cached`] = nodes;
    await this.shot('previews_after_cached_run');

    // a new loader, with a node placed right under it as it was created: the preview fits the loader
    const batch = (await getJson(`${this.o.url}/pose_factory/projects/examples/batches`)).batches[0].batch_id;
    await this.page.evaluate((batch) => {
      const g = window.app.graph;
      g.clear();
      const loader = window.LiteGraph.createNode('PoseFactoryLoadPoseFromR2');
      loader.pos = [0, 0];
      g.add(loader);
      loader.widgets.find((w) => w.name === 'project').value = 'examples';
      loader.widgets.find((w) => w.name === 'batch_id').value = batch;
      const preview = window.LiteGraph.createNode('PreviewImage');
      preview.pos = [0, loader.size[1] + 60];
      g.add(preview);
      loader.connect(0, preview, 0);
    }, batch);
    await sleep(800);
    const fresh = await this.queueAndWait();
    await this.fit();
    nodes = await this.boxesWithPreviews();
    const loader = nodes.find((n) => n.type === 'PoseFactoryLoadPoseFromR2');
    const bad3 = overlaps(nodes);
    this.check('a new loader leaves room for its preview', fresh.status === 'success' && loader.images > 0 && bad3.length === 0,
      bad3.length ? bad3 : `${loader.images} image(s), box ${loader.box.map(Math.round)}`);
    await this.shot('previews_new_loader');
  }

  async sidebar() {
    const { projects } = await getJson(this.o.url + '/pose_factory/projects');
    const expected = [];
    for (const p of projects) {
      for (const b of (await getJson(`${this.o.url}/pose_factory/projects/${p}/batches`)).batches) expected.push(`${p}/${b.batch_id}`);
    }
    await this.loadTemplate(NO_MODEL);
    await this.page.evaluate(() => window.app.extensionManager.command.execute('Workspace.ToggleSidebarTab.pose-factory-batches'));
    await this.page.waitForSelector('.pf-batch', { timeout: 15000 }).catch(() => {});
    await sleep(2500);
    const shown = await this.page.$$eval('.pf-batch', (els) => els.map((e) => `${e.dataset.project}/${e.dataset.batch}`));
    this.check('sidebar lists every batch', expected.length > 0 && expected.every((b) => shown.includes(b)) && shown.length === expected.length,
      { expected, shown });
    const thumbs = await this.page.$$eval('.pf-batch img', (els) => els.filter((i) => i.complete && i.naturalWidth > 0).length);
    const sizes = await this.page.$$eval('.pf-batch .pf-size', (els) => els.map((e) => e.textContent));
    this.check('batches show a thumbnail and their size', thumbs === shown.length && sizes.every((s) => /\d/.test(s)),
      { thumbs, sizes });
    await this.shot('sidebar');

    // click -> a selected new loader gets the batch
    const target = expected[0];
    const id = await this.page.evaluate(() => {
      const n = window.LiteGraph.createNode('PoseFactoryLoadPoseFromR2');
      n.pos = [800, 1800];
      window.app.graph.add(n);
      window.app.canvas.deselectAll?.();
      window.app.canvas.selectNode(n);
      return n.id;
    });
    await sleep(500);
    await this.page.click(`.pf-batch[data-project="${target.split('/')[0]}"][data-batch="${target.split('/')[1]}"]`);
    await sleep(800);
    const widgets = await this.page.evaluate((id) => {
      const n = window.app.graph.getNodeById(id);
      return Object.fromEntries(n.widgets.filter((w) => ['project', 'batch_id'].includes(w.name)).map((w) => [w.name, w.value]));
    }, id);
    const [proj, bid] = target.split('/');
    this.check('click puts the batch into the selected loader',
      widgets.project === proj && (widgets.batch_id === bid || widgets.batch_id === target), widgets);
    if (this.vue) {
      const domText = await this.page.evaluate((id) => document.querySelector(`[data-node-id="${id}"]`)?.innerText ?? '', id);
      this.check('the Vue node shows the new values', domText.includes(bid), domText.slice(0, 200));
    }
    await this.page.evaluate((id) => window.app.canvas.centerOnNode?.(window.app.graph.getNodeById(id)), id);
    await sleep(500);
    await this.shot('sidebar_click');
    // a batch dropdown whose values carry their project ("<project>/<batch_id>") gets that form
    const qualified = await this.page.evaluate(async ({ id, target }) => {
      const n = window.app.graph.getNodeById(id);
      const w = n.widgets.find((x) => x.name === 'batch_id');
      w.options.values = ['other/0123456789abcdef'];
      w.value = 'other/0123456789abcdef';
      window.app.canvas.selectNode(n);
      const [p, b] = target.split('/');
      document.querySelector(`.pf-batch[data-project="${p}"][data-batch="${b}"]`).click();
      await new Promise((r) => setTimeout(r, 500));
      return w.value;
    }, { id, target });
    this.check('a project/batch dropdown gets project/batch', qualified === target, qualified);
    await this.page.evaluate((id) => window.app.graph.remove(window.app.graph.getNodeById(id)), id); // not valid here

    // a forced re-render: its progress in the tab
    await this.page.evaluate(() => {
      const req = (window.app.graph._nodes ?? window.app.graph.nodes).find((n) => n.type === 'PoseFactoryRequestPoseBatch');
      req.widgets.find((w) => w.name === 'force').value = true;
    });
    // an earlier forced run of the same graph would be served from ComfyUI's cache: drop it first
    await fetch(this.o.url + '/api/free', { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ free_memory: true }) });
    await sleep(2500);
    const seen = new Set();
    let midShot = null;
    const run = this.queueAndWait();
    const poll = (async () => {
      for (let i = 0; i < 600; i++) {
        const jobs = await this.page.$$eval('.pf-job', (els) => els.map((e) => e.innerText.split('\n')[0])).catch(() => []);
        for (const j of jobs) seen.add(j);
        if (!midShot && jobs.some((j) => /rendering [1-9]/.test(j))) {
          midShot = await this.shot('sidebar_progress');
          await this.docShot('batch_browser.png');
        }
        if (jobs.some((j) => /^completed/.test(j))) break;
        await sleep(250);
      }
    })();
    await Promise.all([run, poll]);
    this.check('running job shows its progress in the tab', [...seen].some((s) => /\d+\/\d+/.test(s)) &&
      [...seen].some((s) => /^completed/.test(s)), [...seen]);
    await this.shot('sidebar_after_job');
    await this.page.evaluate(() => window.app.extensionManager.command.execute('Workspace.ToggleSidebarTab.pose-factory-batches'));
  }

  async models() {
    const listed = (await getJson(this.o.url + '/api/workflow_templates'))[this.o.module];
    for (const title of listed) { // every template as it opens: no node on another
      await this.clearGraph();
      await this.loadTemplate(title);
      const bad = overlaps(await this.nodeBoxes());
      this.check(`"${title}" opens with no node over another`, bad.length === 0, bad.length ? bad : undefined);
    }
    await this.clearGraph();
    await this.loadTemplate(SDXL);
    await sleep(3000);
    // 1.49 surfaces missing models as errors: "View details" opens the panel that lists them
    await this.page.getByRole('button', { name: /view details/i }).first().click({ timeout: 10000 }).catch(() => {});
    await sleep(2500);
    const text = await this.page.evaluate(() => document.body.innerText);
    this.report.missingModelsText = text.slice(0, 4000);
    const urls = await this.page.evaluate(() => [...document.querySelectorAll('a[href]')].map((a) => a.href)
      .filter((h) => /huggingface\.co/.test(h)));
    this.check('missing models are listed', text.includes('sd_xl_base_1.0.safetensors') && text.includes('OpenPoseXL2.safetensors'));
    const downloads = await this.page.getByText('Download', { exact: true }).count();
    this.check('each missing model offers a download', downloads === 2, `${downloads} Download button(s); links: ${urls.join(' ')}`);
    await this.shot('missing_models');
    await this.docShot('missing_models.png');
  }
  async photo() {
    const PHOTO = 'Photo to pose - no models';
    await this.clearGraph();
    const load = await this.loadTemplate(PHOTO);
    this.check('photo template loads', load.ok, load.error);
    // every Load Image names a file the server has in its input folder
    const files = await this.page.evaluate(() => (window.app.graph._nodes ?? window.app.graph.nodes)
      .filter((n) => n.type === 'LoadImage').map((n) => n.widgets.find((w) => w.name === 'image').value));
    const served = [];
    for (const f of files) {
      const r = await fetch(`${this.o.url}/api/view?filename=${encodeURIComponent(f)}&type=input`);
      served.push(`${f}: ${r.status}`);
    }
    this.check('its Load Image files are in the input folder', files.length > 0 && served.every((s) => s.endsWith(': 200')),
      served.join(', '));
    const errors = [];
    const onError = (e) => errors.push(e);
    await this.page.exposeFunction(`__pfPhotoError_${this.renderer}`, onError).catch(() => {});
    await this.page.evaluate((name) => window.app.api.addEventListener('execution_error', (e) => window[name](
      `${e.detail?.node_type}: ${e.detail?.exception_message}`)), `__pfPhotoError_${this.renderer}`);
    const run = await this.queueAndWait();
    this.check('photo template runs on its first click', run.status === 'success' && errors.length === 0,
      errors.length ? errors.join(' | ') : run.status);
    await this.fit();
    const shown = await this.page.evaluate((vue) => (window.app.graph._nodes ?? window.app.graph.nodes)
      .filter((n) => n.type === 'PreviewImage').map((n) => {
        const el = document.querySelector(`[data-node-id="${n.id}"]`);
        const imgs = vue && el ? [...el.querySelectorAll('img')] : (n.imgs ?? []);
        return `${n.title}: ${imgs.filter((i) => i.complete && i.naturalWidth > 0).length}`;
      }), this.vue);
    this.check('every preview of the photo template shows an image', shown.length > 0 && shown.every((s) => !s.endsWith(': 0')),
      shown.join(', '));
    // what the page shows as errors: toasts and dialogs (PrimeVue), e.g. the execution error's
    const popups = await this.page.evaluate(() => [...document.querySelectorAll('.p-toast-message, [role=dialog], [role=alert]')]
      .map((el) => el.innerText.replace(/\s+/g, ' ').trim()).filter(Boolean));
    this.report.photoPopups = (this.report.photoPopups ?? []).concat(popups.map((t) => `[${this.renderer}] ${t}`));
    this.check('no error toast or dialog', !popups.some((t) => /error|failed/i.test(t)), popups.join(' | ').slice(0, 600) || undefined);
    await this.shot('photo_after_run');

    // a photo with nobody on it: the error says why, in a toast, not only in the error report
    const gray = Buffer.from(
      'iVBORw0KGgoAAAANSUhEUgAAAMgAAADICAAAAACIM/FCAAAA80lEQVR4nO3PAQkAIADAMDW50S0hOORL8M89/rBeB9zSiKYRTSOaRjSNaBrRNKJpRNOIphFNI5pGNI1oGtE0omlE04imEU0jmkY0jWga0TSiaUTTiKYRTSOaRjSNaBrRNKJpRNOIphFNI5pGNI1oGtE0omlE04imEU0jmkY0jWga0TSiaUTTiKYRTSOaRjSNaBrRNKJpRNOIphFNI5pGNI1oGtE0omlE04imEU0jmkY0jWga0TSiaUTTiKYRTSOaRjSNaBrRNKJpRNOIphFNI5pGNI1oGtE0omlE04imEU0jmkY0jWga0TSiaUTTiKYRTSOaA9qPAhDIE1jUAAAAAElFTkSuQmCC', 'base64');
    const form = new FormData();
    form.append('image', new Blob([gray], { type: 'image/png' }), 'pf_check_nobody.png');
    form.append('overwrite', 'true');
    await fetch(this.o.url + '/upload/image', { method: 'POST', body: form });
    await this.page.evaluate(() => {
      const n = (window.app.graph._nodes ?? window.app.graph.nodes).find((n) => n.title === 'Posture: front photo');
      const w = n.widgets.find((w) => w.name === 'image');
      if (!w.options.values.includes('pf_check_nobody.png')) w.options.values.push('pf_check_nobody.png');
      w.value = 'pf_check_nobody.png';
    });
    const failed = await this.queueAndWait();
    await sleep(1000);
    const toasts = await this.page.evaluate(() => [...document.querySelectorAll('.p-toast-message')]
      .map((el) => el.innerText.replace(/\s+/g, ' ').trim()));
    this.check('a photo with nobody: the toast gives the reason', failed.status === 'error' &&
      toasts.some((t) => /no person found/.test(t) && /Load Image/.test(t)), toasts.join(' | ').slice(0, 500));
    await this.shot('photo_nobody_error');

    // a batch of two, the second with nobody: it runs, and a warning toast names the image
    await this.clearGraph();
    await this.page.evaluate(async () => window.app.loadApiJson({
      1: { class_type: 'LoadImage', inputs: { image: 'pose_factory_photo.png' } },
      2: { class_type: 'LoadImage', inputs: { image: 'pf_check_nobody.png' } },
      3: { class_type: 'ImageBatch', inputs: { image1: ['1', 0], image2: ['2', 0] } },
      4: { class_type: 'PoseFactoryExtractPose', inputs: { image: ['3', 0], hands: false, sdxl_sticks: false } },
      5: { class_type: 'PreviewImage', inputs: { images: ['4', 0] } },
    }, 'photo batch'));
    await sleep(1000);
    const partial = await this.queueAndWait();
    await sleep(500);
    const warned = await this.page.evaluate(() => [...document.querySelectorAll('.p-toast-message')]
      .map((el) => el.innerText.replace(/\s+/g, ' ').trim()));
    this.check('a batch with one image of nobody runs and warns which', partial.status === 'success' &&
      warned.some((t) => /no person found in image 2 of 2/.test(t)), `${partial.status}: ${warned.join(' | ').slice(0, 400)}`);
    await this.shot('photo_partial_batch');
  }

  // --- issue 21: the new user's path ---------------------------------------------------------------
  // The graph's first node of a type, by id.
  async nodeOf(type) {
    for (let i = 0; i < 60; i++) { // a template just loaded may still be arriving
      const id = await this.page.evaluate((type) => (window.app.graph._nodes ?? window.app.graph.nodes)
        .find((n) => n.type === type)?.id, type);
      if (id !== undefined) return id;
      await sleep(250);
    }
    throw new Error(`no ${type} node in the graph`);
  }

  async setWidgets(id, values) {
    await this.page.evaluate(({ id, values }) => {
      const n = window.app.graph.getNodeById(id);
      for (const [k, v] of Object.entries(values)) n.widgets.find((w) => w.name === k).value = v;
    }, { id, values });
  }

  async newloader() {
    await this.clearGraph();
    for (let i = 0; i < 3; i++) { // the first load right after the page opened is sometimes dropped
      const load = await this.loadTemplate(NO_MODEL);
      if (!load.ok) throw new Error(`template: ${load.error}`);
      if (await this.page.evaluate(() => (window.app.graph._nodes ?? window.app.graph.nodes).length > 0)) break;
      await sleep(2000);
    }
    const req = await this.nodeOf('PoseFactoryRequestPoseBatch');
    const cam = await this.nodeOf('PoseFactoryCameraOrbit');
    // a size no earlier run used: a new batch id, rendered now (2 views keep it short)
    const size = 64 + 8 * Math.floor(Math.random() * 24) + (this.vue ? 200 : 0);
    await this.setWidgets(req, { width: size, height: 64 });
    await this.setWidgets(cam, { views: 2 });
    const before = (await getJson(this.o.url + '/pose_factory/loader_batches')).pose;
    const run = await this.queueAndWait();
    this.check('a template renders a new batch from the UI', run.status === 'success', run.status);
    const after = (await getJson(this.o.url + '/pose_factory/loader_batches')).pose;
    const made = after.filter((b) => !before.includes(b));
    this.check('the new batch is in the loader list route', made.length === 1 && after[0] === made[0], { made, newest: after[0] });
    const id = await this.page.evaluate(() => {
      const n = window.LiteGraph.createNode('PoseFactoryLoadPoseFromR2');
      n.pos = [2600, 0]; // clear of the template's nodes (their DOM widgets would take the clicks)
      window.app.graph.add(n);
      return n.id;
    });
    await sleep(1500);
    const w = await this.page.evaluate((id) => {
      const n = window.app.graph.getNodeById(id);
      const b = n.widgets.find((x) => x.name === 'batch_id');
      return { value: b.value, values: [...(Array.isArray(b.options.values) ? b.options.values : b.options.values())] };
    }, id);
    this.check('a new Load Pose Batch lists the new batch without a reload', made.length === 1 && w.values.includes(made[0]) &&
      w.value === made[0], { value: w.value, first: w.values.slice(0, 4) });
    const kinds = await getJson(this.o.url + '/pose_factory/loader_batches');
    const listed = w.values.filter((v) => v.includes('/'));
    this.check('its list is every project\'s keypoint batches as project/batch', listed.length === kinds.pose.length &&
      listed.every((v) => kinds.pose.includes(v)), { listed: listed.length, route: kinds.pose.length });
    // the refresh button re-lists storage: the list keeps the batch (it said "0 batches in default")
    await this.page.evaluate((id) => {
      const n = window.app.graph.getNodeById(id);
      n.widgets.find((x) => x.name === 'refresh batches').callback();
    }, id);
    await sleep(2000);
    const refreshed = await this.page.evaluate((id) => {
      const b = window.app.graph.getNodeById(id).widgets.find((x) => x.name === 'batch_id');
      return { value: b.value, values: [...b.options.values] };
    }, id);
    const toastText = await this.page.evaluate(() => [...document.querySelectorAll('.p-toast-message')].map((e) => e.innerText).join(' | '));
    this.check('"refresh batches" keeps every project\'s batches', refreshed.values.includes(made[0]) && refreshed.value === made[0] &&
      !/0 batches in default/.test(toastText), { toast: toastText.slice(0, 200), n: refreshed.values.length });
    await this.page.evaluate((id) => window.app.canvas.centerOnNode?.(window.app.graph.getNodeById(id)), id);
    await sleep(800);
    if (this.vue) {
      const text = await this.page.evaluate((id) => document.querySelector(`[data-node-id="${id}"]`)?.innerText ?? '', id);
      this.check('the Vue node shows the new batch', made.length === 1 && text.includes(made[0].split('/')[1].slice(0, 8)), text.slice(0, 200));
    }
    await this.shot('new_loader_lists_new_batch');
    const offered = (await this.openCombo(id, 'batch_id')).map((t) => t.trim());
    this.check('its dropdown, opened, offers the new batch', made.length === 1 && offered.includes(made[0]), offered.slice(0, 5));
    await this.shot('new_loader_dropdown');
    await this.page.keyboard.press('Escape');
  }

  async projects() {
    const info = await getJson(this.o.url + '/object_info');
    const ours = Object.keys(info).filter((k) => k.startsWith('PoseFactory'));
    await this.clearGraph();
    const made = await this.page.evaluate((ours) => {
      const out = [];
      ours.forEach((type, i) => {
        const n = window.LiteGraph.createNode(type);
        if (!n) return;
        n.pos = [(i % 5) * 420, Math.floor(i / 5) * 700];
        window.app.graph.add(n);
        out.push({ id: n.id, type });
      });
      return out;
    }, ours);
    await sleep(2000);
    const controls = await this.page.evaluate((made) => made.map(({ id, type }) => {
      const n = window.app.graph.getNodeById(id);
      const shown = (n.widgets ?? []).filter((w) => /project/i.test(w.name) && !w.hidden && !w.options?.hidden);
      const p = shown.find((w) => w.name === 'project');
      return { id, type, shown: shown.map((w) => w.name), value: p?.value,
        values: p ? [...(Array.isArray(p.options.values) ? p.options.values : p.options.values())] : null };
    }), made);
    const two = controls.filter((c) => c.shown.length > 1);
    this.check('no node of the pack shows two project controls', made.length === ours.length && two.length === 0,
      two.length ? two : `${made.length} nodes`);
    const storing = controls.filter((c) => c.shown.length === 1);
    const defaults = Object.fromEntries(storing.map((c) => [c.type, info[c.type].input.required.project[1].default]));
    const bad = storing.filter((c) => c.value !== defaults[c.type] || !c.values.includes(c.value) ||
      !c.values.includes('new…') || !c.values.includes('rename…'));
    this.check('a storing node\'s project dropdown shows the project it uses, with new… and rename…',
      storing.length === 3 && bad.length === 0, bad.length ? bad : storing.map((c) => `${c.type}: ${c.value}`));
    if (this.vue) {
      const dom = await this.page.evaluate((made) => made.map(({ id, type }) => {
        const el = document.querySelector(`[data-node-id="${id}"]`);
        const labels = el ? [...el.querySelectorAll('*')].filter((e) => e.children.length === 0 &&
          /^\s*projects?\s*$/i.test(e.textContent)).length : -1;
        return { type, labels };
      }), made);
      const many = dom.filter((d) => d.labels > 1);
      this.check('no Vue node shows two project labels', many.length === 0, many.length ? many : undefined);
    }
    await this.fit();
    await this.shot('project_controls');
    // a workflow with the old text value: the node keeps it, shown in its own list
    await this.clearGraph();
    await this.loadTemplate(NO_MODEL);
    const req = await this.nodeOf('PoseFactoryRequestPoseBatch');
    const restored = await this.page.evaluate((id) => {
      const n = window.app.graph.getNodeById(id);
      const p = n.widgets.filter((w) => /project/.test(w.name) && !w.hidden && !w.options?.hidden);
      return { names: p.map((w) => w.name), value: p[0]?.value, values: [...(p[0]?.options.values ?? [])] };
    }, req);
    this.check('a template\'s project ("examples") is the one control\'s value and in its list',
      restored.names.length === 1 && restored.value === 'examples' && restored.values.includes('examples'), restored);
    const loaders = await this.page.evaluate(() => (window.app.graph._nodes ?? window.app.graph.nodes)
      .filter((n) => n.type.startsWith('PoseFactoryLoad') || n.type === 'PoseFactoryDepthNormalLoader')
      .map((n) => n.widgets.filter((w) => /project/.test(w.name) && !w.hidden && !w.options?.hidden).length));
    this.check('the template\'s loaders show no project widget (the batch entry carries it)', loaders.every((c) => c === 0), loaders);
    await this.page.evaluate((id) => window.app.canvas.centerOnNode?.(window.app.graph.getNodeById(id)), req);
    await sleep(600);
    await this.shot('project_restored');
    // a workflow saved before: the loader's text project "examples" and a bare batch id, unlinked
    const batch = (await getJson(`${this.o.url}/pose_factory/projects/examples/batches`)).batches[0]?.batch_id;
    const old = await this.page.evaluate(async ({ module, title, batch }) => {
      const wf = await (await fetch(`/api/workflow_templates/${module}/${encodeURIComponent(title)}.json`)).json();
      const node = wf.nodes.find((n) => n.type === 'PoseFactoryLoadPoseFromR2');
      node.widgets_values[0] = 'examples';
      node.widgets_values[1] = batch;
      node.widgets_values = node.widgets_values.slice(0, -1); // saved before "person" existed (issue 22)
      node.widgets_values[node.widgets_values.length - 1] = 'hide'; // and before "as rendered" existed
      const link = node.inputs.find((i) => i.name === 'batch')?.link;
      wf.links = wf.links.filter((l) => l[0] !== link);
      for (const n of wf.nodes) for (const o of n.outputs ?? []) o.links = (o.links ?? []).filter((l) => l !== link);
      node.inputs.find((i) => i.name === 'batch').link = null;
      await window.app.loadGraphData(wf, true, true, 'old loader');
      await new Promise((r) => setTimeout(r, 1500));
      const n = (window.app.graph._nodes ?? window.app.graph.nodes).find((x) => x.type === 'PoseFactoryLoadPoseFromR2');
      const w = (k) => n.widgets.find((x) => x.name === k);
      return { batch_id: w('batch_id').value, values: [...w('batch_id').options.values].slice(0, 3), occluded: w('occluded').value,
        person: w('person').value };
    }, { module: this.o.module, title: NO_MODEL, batch });
    this.check('an old workflow\'s loader (text project, bare id) loads as project/batch', !!batch &&
      old.batch_id === `examples/${batch}` && old.values.includes(old.batch_id) && old.occluded === 'hide' &&
      old.person === 'all', old);
  }

  // Opens a node's combo widget the way a user does and returns the choices it offers.
  async openCombo(id, name) {
    if (this.vue) {
      const row = this.page.locator(`[data-node-id="${id}"] [data-testid="node-widget"]`)
        .filter({ has: this.page.locator('[data-testid="widget-layout-field-label"]', { hasText: new RegExp(`^${name}$`) }) });
      await row.locator('[role="combobox"], button').first().click();
      await sleep(800);
      return this.page.locator('[role="option"]').allInnerTexts();
    }
    const pt = await this.page.evaluate(({ id, name }) => {
      const n = window.app.graph.getNodeById(id);
      const w = n.widgets.find((x) => x.name === name);
      const ds = window.app.canvas.ds; // litegraph takes no widget clicks when zoomed far out
      ds.scale = 1;
      ds.offset = [300 - n.pos[0], 200 - n.pos[1]];
      window.app.graph.setDirtyCanvas(true, true);
      const [x, y] = window.app.canvas.ds.convertOffsetToCanvas([n.pos[0] + n.size[0] / 2, n.pos[1] + w.y + 10]);
      const r = window.app.canvas.canvas.getBoundingClientRect();
      return { x: r.x + x, y: r.y + y };
    }, { id, name });
    await this.page.mouse.click(pt.x, pt.y);
    await sleep(800);
    return this.page.locator('.litecontextmenu .litemenu-entry').allInnerTexts();
  }

  async pickOption(text) {
    const sel = this.vue ? '[role="option"]' : '.litecontextmenu .litemenu-entry';
    await this.page.locator(sel, { hasText: text }).first().click();
    await sleep(1000);
  }

  async answerPrompt(text) {
    const dlg = this.page.getByRole('dialog');
    await dlg.locator('input').first().fill(text);
    await this.page.keyboard.press('Enter');
    await sleep(2500);
  }

  async projectui() {
    await this.clearGraph();
    const id = await this.page.evaluate(() => {
      const n = window.LiteGraph.createNode('PoseFactoryRequestPoseBatch');
      n.pos = [300, 200];
      window.app.graph.add(n);
      window.app.canvas.ds.scale = 1;
      window.app.canvas.ds.offset = [0, 0];
      window.app.graph.setDirtyCanvas(true, true);
      return n.id;
    });
    await sleep(1500);
    const { projects, default: def } = await getJson(this.o.url + '/pose_factory/projects');
    const offered = (await this.openCombo(id, 'project')).map((t) => t.trim());
    this.check('the project dropdown offers the known projects, the default, new… and rename…',
      [...projects, def].every((p) => offered.includes(p)) && offered.includes('new…') && offered.includes('rename…'), offered);
    await this.shot('project_dropdown');
    const name = `ui-${this.renderer}-${Date.now() % 100000}`;
    await this.pickOption('new…');
    await this.answerPrompt(name);
    const value = () => this.page.evaluate((id) => window.app.graph.getNodeById(id).widgets.find((w) => w.name === 'project').value, id);
    const made = await value();
    const after = (await getJson(this.o.url + '/pose_factory/projects')).projects;
    this.check('"new…" creates the project and the node takes it', made === name && after.includes(name), { value: made, projects: after });
    await this.openCombo(id, 'project');
    await this.pickOption('rename…');
    await this.answerPrompt(`${name}-renamed`);
    const renamed = await value();
    const later = (await getJson(this.o.url + '/pose_factory/projects')).projects;
    this.check('"rename…" renames it in storage and the node follows', renamed === `${name}-renamed` &&
      later.includes(renamed) && !later.includes(name), { value: renamed, projects: later });
    if (this.vue) {
      const text = await this.page.evaluate((id) => document.querySelector(`[data-node-id="${id}"]`)?.innerText ?? '', id);
      this.check('the Vue node shows the renamed project', text.includes(`${name}-renamed`), undefined);
    }
    await this.shot('project_renamed');
  }

  async cancel() {
    await this.clearGraph();
    await this.loadTemplate(NO_MODEL);
    const req = await this.nodeOf('PoseFactoryRequestPoseBatch');
    await this.setWidgets(req, { force: true, width: 1024 + (this.vue ? 8 : 0), height: 1024 }); // long enough to cancel
    await fetch(this.o.url + '/api/free', { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ free_memory: true }) });
    await this.page.evaluate(() => window.app.extensionManager.command.execute('Workspace.ToggleSidebarTab.pose-factory-batches'));
    await sleep(1500);
    const run = this.queueAndWait();
    let cancelledAt = null;
    const seen = new Set();
    for (let i = 0; i < 1200 && !cancelledAt; i++) {
      const jobs = await this.page.$$eval('.pf-job', (els) => els.map((e) => e.innerText.split('\n')[0])).catch(() => []);
      jobs.forEach((j) => seen.add(j));
      if (jobs.some((j) => /^rendering [1-9]/.test(j))) {
        await this.shot('cancel_before');
        await this.page.click('.pf-job .pf-cancel');
        cancelledAt = Date.now();
      }
      await sleep(250);
    }
    this.check('the long render shows rendering in the sidebar', !!cancelledAt, [...seen]);
    const result = await run;
    this.check('the prompt ends (interrupted)', result.status === 'error' || result.status === 'success', result.status);
    const states = [];
    let gone = false;
    for (let i = 0; i < 80 && !gone; i++) {
      const jobs = await this.page.$$eval('.pf-job', (els) => els.map((e) => e.dataset.state)).catch(() => []);
      if (jobs.includes('cancelled') && !states.some((s) => s.includes('cancelled'))) await this.shot('cancel_after');
      states.push(jobs.join(',') || '(none)');
      gone = jobs.length === 0;
      await sleep(250);
    }
    this.check('the cancelled job shows cancelled, then leaves the sidebar', gone && states.some((s) => s.includes('cancelled')),
      [...new Set(states)]);
    const server = (await getJson(this.o.url + '/pose_factory/jobs')).jobs;
    this.check('the server runs no job afterwards', server.length === 0, server);
    await this.shot('cancel_gone');
    await this.page.evaluate(() => window.app.extensionManager.command.execute('Workspace.ToggleSidebarTab.pose-factory-batches'));
  }

  // Ctrl+Z in the viewer undoes the pose, not the graph (issue 21): the Posing in 3D template; a node
  // moved (a graph change ComfyUI's undo would take back), the left elbow turned in the 3D viewer,
  // then Ctrl+Z with the viewer focused: the pose is back, the same node objects are in the graph
  // (ComfyUI's undo reloads the graph) and the moved node stays moved; Ctrl+Shift+Z redoes.
  async viewerUndo() {
    // (where several packs list the same templates, e.g. a shared harness's other links, the loaded one's)
    const module = await this.page.evaluate(async (first) => {
      const listed = await (await fetch('/api/workflow_templates')).json();
      const exts = await (await fetch('/api/extensions')).json();
      const loaded = Object.keys(listed).filter((m) => exts.some((e) => e.startsWith(`/extensions/${m}/`)));
      return loaded.includes(first) ? first : loaded.find((m) => listed[m].includes('Posing in 3D - no models')) ?? first;
    }, this.o.module);
    const keep = this.o.module;
    this.o.module = module;
    const loaded = await this.loadTemplate('Posing in 3D - no models');
    this.o.module = keep;
    this.check('viewer undo: template loads', loaded.ok, loaded.error);
    const V = `[...window.__poseFactoryViewer.viewers].find((v) => v.node.graph && v.node.comfyClass === "PoseFactoryPoseFromJSON")`;
    await this.page.waitForFunction(`(() => { const v = ${V}; return v && v.data; })()`, null, { timeout: 60000 });
    await this.page.evaluate(`(() => { const v = ${V}, n = v.node, ds = window.app.canvas.ds;
      ds.scale = 1; ds.offset = [-n.pos[0] + 80, -n.pos[1] + 60]; window.app.canvas.setDirty(true, true); })()`);
    await sleep(1200);
    const before = await this.page.evaluate(`(() => { const v = ${V}, g = window.app.graph;
      const other = g._nodes.find((n) => n.comfyClass === "PoseFactoryCameraList");
      other.pos = [other.pos[0] + 41, other.pos[1]];
      window.app.extensionManager.workflow.activeWorkflow.changeTracker.captureCanvasState();
      window.__pfUndo = { node: v.node, viewer: v, other: other.id, otherPos: JSON.stringify([...other.pos]) };
      v.select("l_elbow");
      return v.node.widgets.find((w) => w.name === "joints").value; })()`);
    await this.page.waitForFunction(`${V}.dofs.querySelector('input[type=range][data-dof="flex"]')`);
    const id = await this.page.evaluate(`${V}.node.id`);
    const slider = this.page.locator(`.pose-factory-viewer[data-node-id="${id}"] input[type=range][data-dof="flex"]`);
    await slider.fill(String(Number(await slider.inputValue()) - 25));
    await sleep(500);
    const edited = await this.page.evaluate(`${V}.node.widgets.find((w) => w.name === "joints").value`);
    const r = await this.page.evaluate(`(() => { const b = ${V}.canvas.getBoundingClientRect(); return [b.left, b.top, b.width, b.height]; })()`);
    await this.page.mouse.click(r[0] + 6, r[1] + r[3] - 6); // the 3D view takes the focus; nothing there to pick
    await this.page.keyboard.press('Control+z');
    await sleep(1500);
    const after = await this.page.evaluate(() => { const m = window.__pfUndo, g = window.app.graph;
      return { sameNode: g.getNodeById(m.node.id) === m.node, sameViewer: m.node.__poseFactoryViewer === m.viewer,
        otherKept: JSON.stringify([...g.getNodeById(m.other).pos]) === m.otherPos,
        joints: m.node.widgets.find((w) => w.name === 'joints').value }; });
    await this.page.keyboard.press('Control+Shift+z');
    await sleep(800);
    const redone = await this.page.evaluate(() => window.__pfUndo.node.widgets.find((w) => w.name === 'joints').value);
    await this.shot('viewer_undo');
    this.check('Ctrl+Z in the viewer undoes the pose, not the graph', edited !== before && after.joints === before
      && after.sameNode && after.sameViewer && after.otherKept && redone === edited, { before, edited, after, redone });
  }

  // --- issue 22: people -------------------------------------------------------------------------------
  // Every PreviewImage / Preview as Text of the graph and what it shows: [title, images, text].
  async previewsShown() {
    return this.page.evaluate((vue) => (window.app.graph._nodes ?? window.app.graph.nodes)
      .filter((n) => ['PreviewImage', 'PreviewAny'].includes(n.type)).map((n) => {
        const el = document.querySelector(`[data-node-id="${n.id}"]`);
        const imgs = vue && el ? [...el.querySelectorAll('img')] : (n.imgs ?? []);
        const text = n.type !== 'PreviewAny' ? '' : vue && el ? [...el.querySelectorAll('textarea')].map((t) => t.value).join(' ')
          : (n.widgets ?? []).map((w) => String(w.value ?? '')).join(' ');
        return [n.title, imgs.filter((i) => i.complete && i.naturalWidth > 0).length, text];
      }), this.vue);
  }

  async runWatchingErrors(tag) {
    const errors = [];
    await this.page.exposeFunction(`__pfErr_${tag}_${this.renderer}`, (e) => errors.push(e)).catch(() => {});
    await this.page.evaluate((name) => window.app.api.addEventListener('execution_error', (e) => window[name](
      `${e.detail?.node_type}: ${e.detail?.exception_message}`)), `__pfErr_${tag}_${this.renderer}`);
    const run = await this.queueAndWait();
    return { run, errors };
  }

  async people() {
    const TWO = 'Two people - no models';
    const listed = (await getJson(this.o.url + '/api/workflow_templates'))[this.o.module] ?? [];
    this.check('people: the two-people and custom-rig templates are listed', listed.includes(TWO) &&
      listed.includes('Two people - OpenPose and depth to SDXL') && listed.includes('Custom rig - no models'));
    await this.clearGraph();
    const load = await this.loadTemplate(TWO);
    this.check('people: two-people template loads', load.ok, load.error);
    await this.fit();
    const opened = overlaps(await this.nodeBoxes());
    this.check('people: it opens with no node over another', opened.length === 0, opened.length ? opened : undefined);
    await this.shot('people_template_opened');
    const { run, errors } = await this.runWatchingErrors('people');
    this.check('people: it runs on its first click', run.status === 'success' && errors.length === 0,
      errors.length ? errors.join(' | ') : run.status);
    await this.fit();
    await this.boxesWithPreviews();
    const shown = await this.previewsShown();
    this.check('people: every preview shows images (person 1 alone, person 0\'s mask among them)',
      shown.length === 6 && shown.every(([, n]) => n > 0), shown.map(([t, n]) => `${t}: ${n}`).join(', '));
    const bad = overlaps(await this.nodeBoxes());
    this.check('people: no node overlaps another after the run', bad.length === 0, bad.length ? bad : undefined);
    await this.shot('people_after_run');
    await this.docShot('two_people.png', { graph: true });
    await this.page.evaluate(() => { // the Scene nodes at 100 %, as a user reads them
      const n = (window.app.graph._nodes ?? window.app.graph.nodes).find((x) => x.type === 'PoseFactoryScene');
      const ds = window.app.canvas.ds;
      ds.scale = 1; ds.offset = [-n.pos[0] + 420, -n.pos[1] + 80]; window.app.canvas.setDirty(true, true);
    });
    await sleep(1200);
    await this.shot('people_scene_nodes');
    // the widgets a new user meets on the nodes
    const widgets = await this.page.evaluate(() => {
      const names = (type) => { const n = window.LiteGraph.createNode(type); return (n.widgets ?? []).map((w) => w.name); };
      const combo = (type, name) => { const n = window.LiteGraph.createNode(type); const w = n.widgets.find((x) => x.name === name);
        return [...(Array.isArray(w.options.values) ? w.options.values : w.options.values())]; };
      return { scene: names('PoseFactoryScene'), rig: names('PoseFactoryCustomRig'), mannequin: names('PoseFactoryMannequin'),
        person: combo('PoseFactoryLoadPoseFromR2', 'person'), maskPerson: combo('PoseFactoryDepthNormalLoader', 'person'),
        rigFiles: combo('PoseFactoryCustomRig', 'rig_file'), boneMaps: combo('PoseFactoryCustomRig', 'bone_map') };
    });
    this.check('people: Scene shows position_x, position_y, facing', ['position_x', 'position_y', 'facing']
      .every((w) => widgets.scene.includes(w)), widgets.scene);
    this.check('people: Mannequin shows its body-shape widgets after build', widgets.mannequin.join(',')
      .startsWith('height,build,proportions,head_ratio,shoulder_width,hip_width,arm_length,leg_length'), widgets.mannequin);
    this.check('people: the loaders offer person all, 0..7', [widgets.person, widgets.maskPerson].every((v) =>
      v.join(',') === 'all,0,1,2,3,4,5,6,7'), widgets.person);
    this.check('people: Custom Rig lists the template rig under 3d/ and the bone maps',
      widgets.rigFiles.includes('3d/pose_factory_mannequin_rig.glb') && widgets.boneMaps.join(',') === 'auto,mixamo,rigify,vrm,custom',
      { rigFiles: widgets.rigFiles, boneMaps: widgets.boneMaps });

    // a workflow saved before issue 22: the no-model template as it was committed then (8608a1c)
    let old = null;
    try {
      old = JSON.parse(require('child_process').execSync('git show 8608a1c:"example_workflows/Pose preview - no models.json"',
        { cwd: path.join(__dirname, '..'), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
    } catch (e) { /* no git or no main: the check says so */ }
    if (!old) { this.check('people: an old workflow (main\'s template) loads and runs', false, 'git show 8608a1c:... failed'); return; }
    await this.clearGraph();
    await this.page.evaluate((wf) => window.app.loadGraphData(wf, true, true, 'old no-model template'), old);
    await sleep(1500);
    const req = await this.page.evaluate(() => {
      const n = (window.app.graph._nodes ?? window.app.graph.nodes).find((x) => x.type === 'PoseFactoryRequestPoseBatch');
      const link = (name) => { const i = n.inputs.find((x) => x.name === name); const l = i && i.link != null && window.app.graph.links[i.link];
        return l ? window.app.graph.getNodeById(l.origin_id).type : null; };
      return { poses: link('poses'), cameras: link('cameras'), subject: link('subject'),
        width: n.widgets.find((w) => w.name === 'width').value, project: n.widgets.find((w) => w.name === 'project').value };
    });
    this.check('people: the old workflow\'s links and widgets land where they were', req.poses === 'PoseFactoryPoseList' &&
      req.cameras === 'PoseFactoryCameraOrbit' && req.subject === 'PoseFactoryMannequin' && req.width === 512 &&
      req.project === 'examples', req);
    const oldRun = await this.runWatchingErrors('old');
    this.check('people: the old workflow runs', oldRun.run.status === 'success' && oldRun.errors.length === 0,
      oldRun.errors.length ? oldRun.errors.join(' | ') : oldRun.run.status);
    await this.fit();
    await this.shot('people_old_workflow');
  }

  async customrig() {
    const RIG = 'Custom rig - no models';
    await this.clearGraph();
    const load = await this.loadTemplate(RIG);
    this.check('customrig: template loads', load.ok, load.error);
    const file = await this.page.evaluate(() => (window.app.graph._nodes ?? window.app.graph.nodes)
      .find((n) => n.type === 'PoseFactoryCustomRig').widgets.find((w) => w.name === 'rig_file').value);
    const served = await fetch(`${this.o.url}/api/view?filename=${encodeURIComponent(file.split('/').pop())}&subfolder=3d&type=input`);
    this.check('customrig: its rig file is in the input folder', served.status === 200, `${file}: ${served.status}`);
    await this.fit();
    const opened = overlaps(await this.nodeBoxes());
    this.check('customrig: it opens with no node over another', opened.length === 0, opened.length ? opened : undefined);
    const { run, errors } = await this.runWatchingErrors('rig');
    this.check('customrig: it runs on its first click', run.status === 'success' && errors.length === 0,
      errors.length ? errors.join(' | ') : run.status);
    await this.fit();
    await this.boxesWithPreviews();
    await sleep(1000);
    const shown = await this.previewsShown();
    const report = shown.find(([, , t]) => t)?.[2] ?? '';
    this.check('customrig: the rig report is shown', /found \(\d+\)/.test(report) && /bone map mixamo/.test(report),
      report.slice(0, 300));
    this.check('customrig: every image preview shows images', shown.filter(([t]) => t !== 'Rig report').every(([, n]) => n > 0),
      shown.map(([t, n]) => `${t}: ${n}`).join(', '));
    await this.shot('customrig_after_run');
    // a path that is no rig file: refused when queued, naming the widget
    await this.page.evaluate(() => {
      const n = (window.app.graph._nodes ?? window.app.graph.nodes).find((x) => x.type === 'PoseFactoryCustomRig');
      n.widgets.find((w) => w.name === 'path_or_key').value = '/tmp/not_a_rig.obj';
    });
    const { text, errs, refused } = await this.queueRefusal();
    this.check('customrig: a path that is no rig file is refused at queue time, naming path_or_key',
      /path_or_key: 'not_a_rig\.obj' is not a rig file/.test(text + errs + refused), (text + ' ' + errs).slice(0, 400));
    await this.shot('customrig_bad_path');
  }

  // Queue the graph expecting a refusal: what the page then shows (toasts, dialogs), the node errors
  // ComfyUI answered, and the error queuePrompt threw (if any).
  async queueRefusal() {
    const refused = await this.page.evaluate(async () => {
      try { await window.app.queuePrompt(0, 1); } catch (e) { return String(e); }
      return '';
    });
    await sleep(1500);
    const text = await this.page.evaluate(() => [...document.querySelectorAll('.p-toast-message, [role=dialog], [role=alert]')]
      .map((el) => el.innerText.replace(/\s+/g, ' ').trim()).join(' | '));
    const errs = await this.page.evaluate(() => JSON.stringify(window.app.lastNodeErrors ?? {}));
    return { text, errs, refused };
  }

  // --- issue 23.2: hide ---------------------------------------------------------------------------------
  async hideJoints() {
    await this.clearGraph();
    const load = await this.loadTemplate(NO_MODEL);
    this.check('hide: template loads', load.ok, load.error);
    const loader = await this.nodeOf('PoseFactoryLoadPoseFromR2');
    const V = `[...window.__poseFactoryViewer.viewers].find((v) => v.node.graph && v.node.comfyClass === "PoseFactoryRequestPoseBatch")`;
    await this.page.waitForFunction(`(() => { const v = ${V}; return v && v.data; })()`, null, { timeout: 60000 });
    await this.page.evaluate(`(() => { const v = ${V}, n = v.node, ds = window.app.canvas.ds;
      ds.scale = 1; ds.offset = [-n.pos[0] + 80, -n.pos[1] + 60]; window.app.canvas.setDirty(true, true);
      v.setPreviewMode("openpose"); })()`);
    await sleep(1200);
    // what the preview shows: the body points drawn per person, and the preview's pixels
    const state = () => this.page.evaluate(`(() => { const v = ${V};
      const drawn = v.previewPeople().people.map((p) => p.keypoints.map((k) => k[2]));
      const px = v.preview.getContext("2d").getImageData(0, 0, v.preview.width, v.preview.height).data;
      let lit = 0; for (let i = 0; i < px.length; i += 4) lit += px[i] || px[i + 1] || px[i + 2] ? 1 : 0;
      return { drawn, lit, hidden: (v.full?.people ?? []).map((p) => p.hidden ?? null), note: v.note ?? "" }; })()`);
    const before = await state();
    await this.setWidgets(loader, { hide: 'left_arm' });
    await this.page.waitForFunction(`(() => { const v = ${V}; return v.full?.people?.[0]?.hidden?.length === 3; })()`,
      null, { timeout: 20000 }).catch(() => {});
    await sleep(600);
    const hid = await state();
    await this.shot('hide_viewer_preview');
    const arm = [5, 6, 7]; // l_shoulder, l_elbow, l_wrist (OpenPose's order)
    this.check('hide: the loader\'s hide list takes the left arm out of the viewer\'s OpenPose preview',
      before.drawn[0]?.filter((c, i) => arm.includes(i)).every((c) => c === 1)
      && hid.drawn[0]?.every((c, i) => (arm.includes(i) ? c === 0 : c === before.drawn[0][i])) && hid.lit < before.lit,
      { before: before.drawn[0], hidden: hid.drawn[0], lit: [before.lit, hid.lit], serverHidden: hid.hidden });
    // the loader runs with it (its skeleton redrawn without the arm) and shows its preview
    const { run, errors } = await this.runWatchingErrors('hide');
    await this.boxesWithPreviews();
    const images = await this.page.evaluate(({ id, vue }) => {
      const n = window.app.graph.getNodeById(id), el = document.querySelector(`[data-node-id="${id}"]`);
      const imgs = vue && el ? [...el.querySelectorAll('img')] : (n.imgs ?? []);
      return imgs.filter((i) => i.complete && i.naturalWidth > 0).length;
    }, { id: loader, vue: this.vue });
    this.check('hide: the template runs with hide on Load Pose Batch, which shows its preview',
      run.status === 'success' && errors.length === 0 && images > 0, errors.length ? errors.join(' | ') : { run: run.status, images });
    await this.shot('hide_after_run');
    await this.setWidgets(loader, { hide: '' });
    await this.page.waitForFunction(`(() => { const v = ${V}; return v.full?.people?.[0] && !v.full.people[0].hidden; })()`,
      null, { timeout: 20000 }).catch(() => {});
    await sleep(600);
    const back = await state();
    this.check('hide: un-hiding gives the same preview back', JSON.stringify(back.drawn) === JSON.stringify(before.drawn)
      && back.lit === before.lit, { lit: [before.lit, back.lit] });
    // an unknown name: refused when queued, naming the allowed ones
    await this.setWidgets(loader, { hide: 'left_hand, tail' });
    const { text, errs, refused } = await this.queueRefusal();
    const all = text + errs + refused;
    this.check('hide: an unknown name is refused at queue time, naming it and the allowed names',
      /unknown joint or group 'tail'/.test(all) && /left_hand/.test(all) && /l_wrist/.test(all), all.slice(0, 400));
    await this.shot('hide_unknown_name');
    await this.setWidgets(loader, { hide: '' });
  }

  // issue 23.1: the feet switch, off by default on the three drawing nodes; on, a render from the UI succeeds
  async feet() {
    await this.clearGraph();
    for (let i = 0; i < 3; i++) {
      const load = await this.loadTemplate(NO_MODEL);
      if (!load.ok) throw new Error(`template: ${load.error}`);
      if (await this.page.evaluate(() => (window.app.graph._nodes ?? window.app.graph.nodes).length > 0)) break;
      await sleep(2000);
    }
    const req = await this.nodeOf('PoseFactoryRequestPoseBatch');
    const load = await this.nodeOf('PoseFactoryLoadPoseFromR2');
    const toImage = await this.page.evaluate(() => {
      const n = window.LiteGraph.createNode('PoseFactoryPoseKeypointsToImage');
      n.pos = [2600, 0];
      window.app.graph.add(n);
      return n.id;
    });
    await sleep(1000);
    const values = await this.page.evaluate((ids) => ids.map((id) =>
      window.app.graph.getNodeById(id).widgets.find((w) => w.name === 'feet')?.value), [req, load, toImage]);
    this.check('feet is a widget, off, on Request Pose Batch, Load Pose Batch and Pose Keypoints To Image',
      values.every((v) => v === false), values);
    await this.page.evaluate((id) => window.app.graph.remove(window.app.graph.getNodeById(id)), toImage);
    const cam = await this.nodeOf('PoseFactoryCameraOrbit');
    const size = 64 + 8 * Math.floor(Math.random() * 24) + (this.vue ? 200 : 0);
    await this.setWidgets(req, { width: size, height: 128, feet: true });
    await this.setWidgets(load, { feet: true });
    await this.setWidgets(cam, { views: 2 });
    const run = await this.queueAndWait();
    this.check('a batch requested with feet renders and loads from the UI', run.status === 'success', run.status);
    await this.page.evaluate((id) => window.app.canvas.centerOnNode?.(window.app.graph.getNodeById(id)), req);
    await sleep(800);
    await this.shot('feet_on');
  }
}

(async () => {
  const o = parseArgs(process.argv.slice(2));
  fs.mkdirSync(o.outDir, { recursive: true });
  const report = { url: o.url, checks: [], screenshots: [], boxes: {}, pageErrors: [], consoleErrors: [] };
  const listed = await getJson(o.url + '/api/workflow_templates');
  // the pack folders that list it: every folder in custom_nodes, loaded or not (a shared harness may
  // link other checkouts); ComfyUI serves the templates of loaded packs only
  for (const k of Object.keys(listed).filter((k) => listed[k].includes(NO_MODEL))) {
    const r = await fetch(`${o.url}/api/workflow_templates/${k}/${encodeURIComponent(NO_MODEL)}.json`);
    if (r.ok) { o.module = k; break; }
  }
  if (!o.module) { console.error(`no pack lists "${NO_MODEL}" at ${o.url}/api/workflow_templates`); process.exit(2); }
  for (const renderer of o.renderers) {
    const s = new Session(o, renderer, report);
    try {
      await s.open();
      for (const name of CHECKS) {
        if (!o.only.includes(name)) continue;
        try { await s[name](); } catch (e) {
          s.check(`${name} (script error)`, false, String(e && e.stack || e).slice(0, 600));
          try { await s.shot(`${name}_error`); } catch (_) { /* ignore */ }
        }
      }
    } finally { await s.close(); }
  }
  for (const e of [...report.pageErrors, ...report.consoleErrors]) console.log('page/console error: ' + e);
  for (const e of report.failedRequests ?? []) console.log('failed request: ' + e);
  const failed = report.checks.filter((c) => !c.ok).length + report.pageErrors.length + report.consoleErrors.length;
  fs.writeFileSync(path.join(o.outDir, 'report.json'), JSON.stringify(report, null, 2));
  console.log(`${report.checks.length - report.checks.filter((c) => !c.ok).length}/${report.checks.length} checks passed; ` +
    `screenshots in ${o.outDir}`);
  process.exit(failed ? 1 : 0);
})().catch((e) => { console.error(e); process.exit(2); });
