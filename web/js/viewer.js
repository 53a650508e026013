// 3D Pose Factory — the 3D viewer on the spec nodes and Request Pose Batch (DESIGN.md §9: a DOM
// widget through node.addDOMWidget, so it works in the classic canvas and in the Vue node renderer).
//
// Everything it shows comes from the core through the server (nodes/routes.py):
//   GET  /pose_factory/viewer/mesh     the mannequin's rest mesh and the joint each vertex moves with
//   GET  /pose_factory/viewer/limits   posable joints, their DOFs and limits, presets
//   POST /pose_factory/viewer/scene    the graph's spec nodes (API-format fragments) -> the posed
//                                      joints, keypoints and the worker's cameras
// The browser only moves each rest vertex rigidly with its joint (v' = R_j (v - rest_j) + p_j, what
// the core's rig.Posed.transform_points does) and projects keypoints with the camera the core built;
// the rig itself (forward kinematics, presets, limits) is never copied here.
//
// Navigation: the free view orbits around the figure's centre, the wheel zooms toward the figure
// within limits that keep it in view, "frame" (or F) frames the figure. While a viewer has the focus or
// the pointer, Ctrl+Z / Ctrl+Shift+Z / Ctrl+Y undo and redo its pose edits, never ComfyUI's graph.
// Poses made only when the prompt runs (Motion Clip, Pose From Photo) are shown after the run: those
// nodes send a key with their UI output, the server keeps the poses under it (pose_factory.viewer).
// Props (Pose Prop nodes chained into Request Pose Batch's props) are drawn from their mesh files,
// placed with the matrix the server computes as the worker places them, in the view and the passes.
//
// One WebGL renderer is shared by every viewer (browsers allow few WebGL contexts) and draws only on
// demand — after a change, an orbit drag or a resize — into the viewer's own 2D canvas; a collapsed
// or hidden node draws nothing and holds no GPU memory of its own.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import * as THREE from "./vendor/three.module.min.js";

const REQUEST = "PoseFactoryRequestPoseBatch";
// several people: subject, poses, place; chained through `scene` (no viewer of its own: the viewers
// around it show its whole scene)
const SCENE_NODE = "PoseFactoryScene";
const SUBJECT_NODES = ["PoseFactoryMannequin"];
const POSE_NODES = ["PoseFactoryPosePreset", "PoseFactoryPoseFromJSON", "PoseFactoryPoseSequence"];
const CAMERA_NODES = ["PoseFactoryCameraOrbit", "PoseFactoryCameraList"];
const VIEWER_NODES = [REQUEST, ...SUBJECT_NODES, ...POSE_NODES, ...CAMERA_NODES];
const POSING_NODE = "PoseFactoryPoseFromJSON";
const CAMERA_LIST = "PoseFactoryCameraList";
const RESULT_NODES = ["PoseFactoryMotionClip", "PoseFactoryPoseFromPhoto", "PoseFactoryPoseFromKeypoints"]; // poses known after a run
const POSE_LOADER = "PoseFactoryLoadPoseFromR2"; // its `hide` list is what the OpenPose preview leaves out
const PICK_PX = 6; // a camera's frustum within this many pixels of the pointer is picked
const SENSOR_WIDTH = 36; // mm, the spec's default: "add this view" states it
const VIEWER_HEIGHT = 320; // px, the widget's starting height
// OpenPose body (DESIGN.md §5): 17 limbs (0-based pairs) and 18 colours
const LIMBS = [[1, 2], [1, 5], [2, 3], [3, 4], [5, 6], [6, 7], [1, 8], [8, 9], [9, 10], [1, 11], [11, 12],
  [12, 13], [1, 0], [0, 14], [14, 16], [0, 15], [15, 17]];
const COLOURS = [[255, 0, 0], [255, 85, 0], [255, 170, 0], [255, 255, 0], [170, 255, 0], [85, 255, 0], [0, 255, 0],
  [0, 255, 85], [0, 255, 170], [0, 255, 255], [0, 170, 255], [0, 85, 255], [0, 0, 255], [85, 0, 255],
  [170, 0, 255], [255, 0, 255], [255, 0, 170], [255, 0, 85]];

// --- server ---------------------------------------------------------------------------------------
async function getJson(url, body) {
  const resp = await api.fetchApi(url, body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const data = await resp.json();
  if (!resp.ok) throw new Error(data?.error ?? `HTTP ${resp.status}`);
  return data;
}
const meshes = new Map();
function mesh({ height, build, shape }) {
  const key = `${height}/${build}/${shape ? JSON.stringify(shape) : ""}`;
  if (!meshes.has(key)) {
    const p = getJson(`/pose_factory/viewer/mesh?height=${encodeURIComponent(height)}&build=${encodeURIComponent(build)}`
      + (shape ? `&shape=${encodeURIComponent(JSON.stringify(shape))}` : ""));
    p.catch(() => meshes.delete(key));
    meshes.set(key, p);
  }
  return meshes.get(key);
}
// a custom rig's rest mesh, by the key its scene gave (pose_factory.viewer.rigview)
const rigMeshes = new Map();
function rigMesh(key) {
  if (!rigMeshes.has(key)) {
    const p = getJson(`/pose_factory/viewer/rigmesh?key=${encodeURIComponent(key)}`);
    p.catch(() => rigMeshes.delete(key));
    rigMeshes.set(key, p);
  }
  return rigMeshes.get(key);
}
let limitsPromise = null;
function limits() {
  limitsPromise ??= getJson("/pose_factory/viewer/limits").catch((e) => { limitsPromise = null; throw e; });
  return limitsPromise;
}

// --- what nodes made when the prompt ran ------------------------------------------------------------
// node id -> {key, inputs}: the key the node's UI output carried, and its inputs then (a node whose
// inputs changed since shows the default again until the next run)
const results = new Map();

// --- the graph around a node ------------------------------------------------------------------------
function inputNode(node, input) {
  const i = node.inputs?.indexOf(input) ?? -1;
  return i >= 0 ? node.getInputNode?.(i) ?? null : null;
}

// An API-format fragment {class_type, inputs} of a node and the spec nodes linked into it.
function fragment(node, depth = 0) {
  if (!node || depth > 10) return null;
  const inputs = {};
  for (const w of node.widgets ?? []) {
    if (!w.name || w.name.startsWith("pf_") || w.type === "button" || w.options?.serialize === false) continue;
    inputs[w.name] = w.value;
  }
  for (const input of node.inputs ?? []) {
    if (input.link == null) continue;
    const src = inputNode(node, input);
    if (String(input.type).startsWith("POSE_FACTORY_")) inputs[input.name] = fragment(src, depth + 1);
    else if (input.widget && src?.widgets) { // a widget turned into an input, fed by a primitive node
      const w = src.widgets.find((x) => x.name === "value") ?? src.widgets[0];
      if (w) inputs[input.name] = w.value;
    } else inputs[input.name] = null; // an IMAGE, a MESH...: made when the prompt runs
  }
  const frag = { class_type: node.comfyClass ?? node.type, inputs };
  const ran = results.get(String(node.id));
  if (RESULT_NODES.includes(frag.class_type) && ran && ran.inputs === JSON.stringify(inputs)) frag.result = ran.key;
  return frag;
}

// The `hide` list of the first Load Pose Batch fed by the request's batch output ("" when none is
// linked, or when its hide is itself a linked input): the OpenPose preview leaves out what it hides.
function loaderHide(request) {
  for (const out of request?.outputs ?? []) {
    for (const id of out.links ?? []) {
      const link = request.graph?.links?.get?.(id) ?? request.graph?.links?.[id];
      const target = link && request.graph.getNodeById(link.target_id);
      if ((target?.comfyClass ?? target?.type) !== POSE_LOADER) continue;
      const w = target.widgets?.find((x) => x.name === "hide");
      return typeof w?.value === "string" ? w.value.trim() : "";
    }
  }
  return "";
}

function downstreamRequest(node, depth = 0) {
  if (!node || depth > 6) return null;
  if ((node.comfyClass ?? node.type) === REQUEST) return node;
  for (const out of node.outputs ?? []) {
    for (const id of out.links ?? []) {
      const link = node.graph?.links?.get?.(id) ?? node.graph?.links?.[id];
      const target = link && node.graph.getNodeById(link.target_id);
      const found = downstreamRequest(target, depth + 1);
      if (found) return found;
    }
  }
  return null;
}

// Is the way from node down to the Request Pose Batch through a Scene node (then the node is one
// person's piece, and the viewer shows the request's whole scene)?
function viaScene(node, depth = 0) {
  if (!node || depth > 6) return false;
  for (const out of node.outputs ?? []) {
    for (const id of out.links ?? []) {
      const link = node.graph?.links?.get?.(id) ?? node.graph?.links?.[id];
      const target = link && node.graph.getNodeById(link.target_id);
      const kind = target && (target.comfyClass ?? target.type);
      if (kind === SCENE_NODE || viaScene(target, depth + 1)) return true;
    }
  }
  return false;
}

// Where each person of the scene comes from, in the order the server lists them (the Scene node's
// own order: the chain linked into `scene` first, then this node's person, as props chain):
// [{scene: the Scene node or null, subject: the node of its subject, poses: the node its poses come
// from (its own `poses`, else the shared poses)}].
function peopleSources(subjectNode, sharedPoses, depth = 0) {
  if (!subjectNode || depth > 8) return [{ scene: null, subject: subjectNode ?? null, poses: sharedPoses ?? null }];
  if ((subjectNode.comfyClass ?? subjectNode.type) !== SCENE_NODE) return [{ scene: null, subject: subjectNode, poses: sharedPoses ?? null }];
  const before = inputNode(subjectNode, subjectNode.inputs?.find((i) => i.name === "scene"));
  const own = { scene: subjectNode, subject: inputNode(subjectNode, subjectNode.inputs?.find((i) => i.name === "subject")),
    poses: inputNode(subjectNode, subjectNode.inputs?.find((i) => i.name === "poses")) ?? sharedPoses ?? null };
  return [...(before ? peopleSources(before, sharedPoses, depth + 1) : []), own];
}

function usesLoad3D(frag) {
  if (!frag) return false;
  if (frag.class_type === "PoseFactoryCameraFromLoad3D") return true;
  return Object.values(frag.inputs).some((v) => v && typeof v === "object" && usesLoad3D(v));
}

// The scene request of a viewer on `node`: its own piece, the rest from the Request Pose Batch it
// feeds; a node that is one person's piece of a Scene shows the request's whole scene. `sources`:
// where each person comes from (peopleSources).
function sceneRequest(node, frame) {
  const kind = node.comfyClass ?? node.type;
  const request = downstreamRequest(node);
  const body = { frame };
  let subjectNode = null, posesNode = null;
  if (request) {
    for (const name of ["subject", "poses", "cameras", "props"]) {
      const input = request.inputs?.find((i) => i.name === name);
      const src = input?.link != null ? inputNode(request, input) : null;
      if (src) body[name] = fragment(src);
      if (name === "subject") subjectNode = src;
      if (name === "poses") posesNode = src;
    }
    for (const name of ["width", "height"]) {
      const w = request.widgets?.find((x) => x.name === name);
      if (w) body[name] = Number(w.value);
    }
    const hide = loaderHide(request);
    if (hide) body.hide = hide; // the server answers each person's hidden body points
  }
  const own = !request || !viaScene(node); // not one person's piece of a Scene: it stands for its part
  if (own && SUBJECT_NODES.includes(kind)) { body.subject = fragment(node); subjectNode = node; }
  if (own && POSE_NODES.includes(kind)) { body.poses = fragment(node); posesNode = node; }
  if (CAMERA_NODES.includes(kind)) body.cameras = fragment(node);
  const sources = peopleSources(subjectNode, posesNode);
  let note = "";
  if (usesLoad3D(body.cameras)) {
    delete body.cameras; // the Load 3D camera is known only when the prompt runs
    note = "cameras from Load 3D appear when the prompt runs; showing an orbit";
  }
  return { body, note, request, sources };
}

// --- the shared renderer ------------------------------------------------------------------------------
let shared = null;
function renderer() {
  if (!shared) {
    shared = new THREE.WebGLRenderer({ antialias: true, alpha: false });
    shared.setPixelRatio(1);
  }
  return shared;
}

// The depth and normal previews (DESIGN.md §5, pose_factory/render/passes.py): one pass draws the
// figure's camera-space normal and depth (along the view axis) into a float target, read back and
// mapped here as the worker maps Blender's passes.
const DEPTH_FLOOR = 0.15; // passes.DEPTH_FLOOR: the subject's farthest point, never as dark as the background
const PASS_MATERIAL = new THREE.ShaderMaterial({
  vertexShader: `varying vec3 vNormal; varying float vDepth;
    void main() { vec4 p = modelViewMatrix * vec4(position, 1.0); vNormal = normalMatrix * normal;
      vDepth = -p.z; gl_Position = projectionMatrix * p; }`,
  fragmentShader: `varying vec3 vNormal; varying float vDepth;
    void main() { vec3 n = normalize(vNormal); gl_FragColor = vec4(gl_FrontFacing ? n : -n, vDepth); }`,
  side: THREE.DoubleSide, // as Blender renders a prop's faces, whichever way they wind
});
let passTarget = null;

// float RGBA, bottom row first: camera-space normal (x right, y up, z towards the viewer), depth (0: none)
function renderPass(geometries, camera, width, height) {
  const r = renderer();
  if (!passTarget) passTarget = new THREE.WebGLRenderTarget(1, 1, { type: THREE.FloatType });
  passTarget.setSize(width, height);
  const scene = new THREE.Scene();
  for (const g of geometries) scene.add(new THREE.Mesh(g, PASS_MATERIAL));
  const clear = r.getClearColor(new THREE.Color()), alpha = r.getClearAlpha();
  r.setRenderTarget(passTarget);
  r.setClearColor(0x000000, 0);
  r.clear();
  r.render(scene, camera);
  r.setRenderTarget(null);
  r.setClearColor(clear, alpha);
  const px = new Float32Array(width * height * 4);
  r.readRenderTargetPixels(passTarget, 0, 0, width, height, px);
  return px;
}

// The pass as the worker writes it: depth near = 255, the subject's farthest visible point
// DEPTH_FLOOR × 255, background 0 (per image); normal in the ControlNet convention (red = left),
// background (128, 128, 255).
export function passImage(px, width, height, mode) {
  let near = Infinity, far = -Infinity;
  for (let i = 3; i < px.length; i += 4) if (px[i] > 0) { near = Math.min(near, px[i]); far = Math.max(far, px[i]); }
  const span = Math.max(far - near, 1e-6);
  const img = new ImageData(width, height), out = img.data;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = 4 * ((height - 1 - y) * width + x), o = 4 * (y * width + x), d = px[i + 3];
      out[o + 3] = 255;
      if (mode === "depth") {
        const v = d > 0 ? Math.round(255 * Math.min(1, Math.max(DEPTH_FLOOR, DEPTH_FLOOR + (1 - DEPTH_FLOOR) * (far - d) / span))) : 0;
        out[o] = out[o + 1] = out[o + 2] = v;
      } else if (d > 0) {
        const to8 = (n) => Math.min(255, Math.max(0, Math.round((n + 1) * 127.5)));
        out[o] = to8(-px[i]); out[o + 1] = to8(px[i + 1]); out[o + 2] = to8(px[i + 2]);
      } else {
        out[o] = 128; out[o + 1] = 128; out[o + 2] = 255;
      }
    }
  }
  return img;
}

// A three.js camera for a camera dict (as projectPoints takes), at the render's aspect.
function passCamera(cam, width, height) {
  const r = cam.rotation, k = { ...cam.intrinsics, width, height };
  const c = k.orthographic
    ? new THREE.OrthographicCamera(-(k.cx + 0.5) / k.fx, (k.width - k.cx - 0.5) / k.fx,
      (k.cy + 0.5) / k.fy, -(k.height - k.cy - 0.5) / k.fy, 0.01, 200)
    : new THREE.PerspectiveCamera((2 * Math.atan((k.height / 2) / k.fy) * 180) / Math.PI, k.width / k.height, 0.01, 200);
  c.position.set(...cam.location);
  c.quaternion.setFromRotationMatrix(new THREE.Matrix4().makeBasis(new THREE.Vector3(r[0][0], r[1][0], r[2][0]),
    new THREE.Vector3(r[0][1], r[1][1], r[2][1]), new THREE.Vector3(r[0][2], r[1][2], r[2][2])));
  c.updateMatrixWorld();
  return c;
}

// A prop's mesh file as one triangle geometry in our world (Z up), placed: the file from ComfyUI's
// /view, read as the worker reads it (pose_factory/mesh/meshdata.load_file: every mesh of a glTF scene
// with its node transforms; .glb/.obj turned from Y up to Z up, .stl/.ply kept), then the server's
// placement matrix (scale, XYZ Euler, location: pose_factory.mesh.props.place).
const propFiles = new Map();
function propFile(f) {
  const url = api.apiURL(`/view?filename=${encodeURIComponent(f.filename)}&subfolder=${encodeURIComponent(f.subfolder)}&type=${f.type}`);
  if (!propFiles.has(url)) {
    const p = (async () => {
      const resp = await fetch(url);
      if (!resp.ok) throw new Error(`prop ${f.subfolder ? f.subfolder + "/" : ""}${f.filename}: HTTP ${resp.status}`);
      const data = await resp.arrayBuffer();
      const format = f.filename.split(".").pop().toLowerCase();
      const parts = [];
      if (format === "stl" || format === "ply") {
        parts.push((format === "stl" ? new THREE.STLLoader() : new THREE.PLYLoader()).parse(data));
      } else {
        const root = format === "obj" ? new THREE.OBJLoader().parse(new TextDecoder().decode(data))
          : (await new THREE.GLTFLoader().parseAsync(data, "")).scene;
        root.updateMatrixWorld(true);
        const yUpToZUp = new THREE.Matrix4().set(1, 0, 0, 0, 0, 0, -1, 0, 0, 1, 0, 0, 0, 0, 0, 1);
        root.traverse((o) => {
          if (o.isMesh) parts.push(o.geometry.clone().applyMatrix4(new THREE.Matrix4().multiplyMatrices(yUpToZUp, o.matrixWorld)));
        });
      }
      const positions = [];
      for (const g of parts) {
        const tri = g.index ? g.toNonIndexed() : g;
        positions.push(...tri.attributes.position.array);
      }
      return new Float32Array(positions);
    })();
    p.catch(() => propFiles.delete(url));
    propFiles.set(url, p);
  }
  return propFiles.get(url);
}

async function propMesh(prop) {
  const positions = await propFile(prop.file);
  let geo = new THREE.BufferGeometry();
  geo.setAttribute("position", new THREE.BufferAttribute(positions.slice(), 3));
  const m = prop.matrix;
  geo.applyMatrix4(new THREE.Matrix4().set(...m[0], ...m[1], ...m[2], ...m[3]));
  if (prop.shading === "smooth") geo = THREE.mergeVertices(geo, 1e-6);
  geo.computeVertexNormals();
  geo.computeBoundingSphere();
  const mesh = new THREE.Mesh(geo, new THREE.MeshLambertMaterial({ color: 0xb0a898, side: THREE.DoubleSide }));
  mesh.userData.prop = prop.file;
  return mesh;
}

function label(text, colour = "#ffd54a") {
  const c = document.createElement("canvas");
  c.width = 64; c.height = 32;
  const g = c.getContext("2d");
  g.fillStyle = "rgba(0,0,0,0.6)"; g.fillRect(0, 0, 64, 32);
  g.fillStyle = colour; g.font = "bold 22px sans-serif"; g.textAlign = "center"; g.textBaseline = "middle";
  g.fillText(text, 32, 17);
  const s = new THREE.Sprite(new THREE.SpriteMaterial({ map: new THREE.CanvasTexture(c), depthTest: false }));
  s.scale.set(0.24, 0.12, 1);
  return s;
}

// Project world points as cameras.project does: camera dict {location, rotation (camera-to-world,
// columns right/up/back), intrinsics {fx, fy, cx, cy, orthographic}} -> pixel x, y and depth.
export function projectPoints(cam, pts) {
  const r = cam.rotation, l = cam.location, k = cam.intrinsics;
  const out = [];
  for (let i = 0; i < pts.length; i += 3) {
    const d = [pts[i] - l[0], pts[i + 1] - l[1], pts[i + 2] - l[2]];
    const c = [0, 1, 2].map((j) => d[0] * r[0][j] + d[1] * r[1][j] + d[2] * r[2][j]);
    const depth = -c[2];
    const u = k.orthographic ? c[0] : c[0] / depth;
    const v = k.orthographic ? c[1] : c[1] / depth;
    out.push([k.cx + k.fx * u, k.cy - k.fy * v, depth]);
  }
  return out;
}

// --- one viewer --------------------------------------------------------------------------------------
class Viewer {
  constructor(node) {
    this.node = node;
    this.frame = 0;
    this.view = null; // index of the camera being looked through, null: free orbit
    this.selected = null;
    this.picked = null; // the person the gizmo poses (index in the scene's people), null: this node's own
    this.figures = []; // per person drawn: {index, body (THREE.Mesh), meshData}
    this.undo = [];
    this.redo = [];
    this.scene = new THREE.Scene();
    this.scene.background = new THREE.Color(0x202428);
    this.scene.add(new THREE.HemisphereLight(0xffffff, 0x444444, 1.6));
    const sun = new THREE.DirectionalLight(0xffffff, 1.4);
    sun.position.set(2, -3, 4);
    this.scene.add(sun);
    const grid = new THREE.GridHelper(4, 8, 0x555555, 0x333333);
    grid.rotation.x = Math.PI / 2; // the floor is z = 0, Z up
    this.scene.add(grid);
    this.camera = new THREE.PerspectiveCamera(35, 1, 0.05, 200);
    this.camera.up.set(0, 0, 1);
    this.camera.position.set(1.6, -4.2, 1.6);
    this.figure = new THREE.Group();
    this.rigs = new THREE.Group();
    this.props = new THREE.Group();
    this.scene.add(this.figure, this.rigs, this.props);
    this.jointDots = new THREE.Group();
    this.figure.add(this.jointDots);
    this.buildDom();
    this.controls = new THREE.OrbitControls(this.camera, this.canvas);
    this.controls.target.set(0, 0, 0.9);
    this.controls.enableZoom = false; // the wheel zooms toward the figure (zoom below)
    this.controls.update();
    this.controls.addEventListener("change", () => { this.view = null; this.keepPivot(); this.draw(); });
    this.canvas.addEventListener("wheel", (e) => { e.preventDefault(); this.zoom(e.deltaY); }, { passive: false });
    this.resize = new ResizeObserver(() => this.draw());
    this.resize.observe(this.canvas);
  }

  buildDom() {
    const el = (tag, css, text) => {
      const e = document.createElement(tag);
      if (css) e.style.cssText = css;
      if (text) e.textContent = text;
      return e;
    };
    this.root = el("div", "display:flex;flex-direction:column;width:100%;height:100%;min-height:200px;"
      + "font:11px sans-serif;color:#ddd;gap:2px;box-sizing:border-box");
    this.root.className = "pose-factory-viewer";
    // the Vue node renderer hands the wheel to the graph unless the focus is inside such an element
    // (as core's Load 3D does): once the viewer has the focus (a press in it), the wheel zooms it
    this.root.dataset.captureWheel = "true";
    const stage = el("div", "position:relative;flex:1 1 auto;min-height:120px");
    this.canvas = el("canvas", "position:absolute;inset:0;width:100%;height:100%;border-radius:4px;outline:none");
    this.canvas.tabIndex = 0;
    this.preview = el("canvas", "position:absolute;right:4px;bottom:4px;height:35%;border:1px solid #777;"
      + "background:#000;display:none");
    this.previewLabel = el("div", "position:absolute;right:6px;bottom:calc(35% + 6px);color:#ffd54a;display:none");
    this.status = el("div", "position:absolute;left:6px;top:4px;pointer-events:none;text-shadow:0 0 3px #000");
    stage.append(this.canvas, this.preview, this.previewLabel, this.status);
    const bar = el("div", "display:flex;flex-wrap:wrap;gap:3px;align-items:center;flex:0 0 auto");
    const buttonIn = (parent) => (text, title, fn) => {
      const b = el("button", "font:11px sans-serif;padding:1px 6px", text);
      b.title = title;
      b.addEventListener("click", (e) => { e.stopPropagation(); fn(); });
      parent.append(b);
      return b;
    };
    const button = buttonIn(bar);
    button("free view", "Orbit freely around the figure (drag: turn, wheel: zoom, right-drag: pan)", () => this.freeView());
    this.frameButton = button("frame", "Frame the figure (F)", () => this.frameFigure());
    this.previewButton = button("preview", "Show/hide the preview of the current view", () => this.togglePreview());
    this.previewMode = "openpose";
    this.modeSelect = el("select", "font:11px sans-serif");
    this.modeSelect.title = "which pass the preview shows (drawn in the browser; the batch's images come from the worker)";
    for (const m of ["openpose", "depth", "normal"]) this.modeSelect.append(new Option(m, m));
    this.modeSelect.addEventListener("change", () => this.setPreviewMode(this.modeSelect.value));
    bar.append(this.modeSelect);
    this.addViewButton = button("add this view", "Append this view to the Camera List feeding Request Pose Batch",
      () => this.addView());
    this.frameInput = el("input", "width:42px");
    this.frameInput.type = "number"; this.frameInput.min = "0"; this.frameInput.value = "0";
    this.frameInput.title = "frame (pose) shown";
    this.frameInput.addEventListener("change", () => { this.frame = Math.max(0, Number(this.frameInput.value) | 0); this.refresh(); });
    bar.append(el("span", "", "frame"), this.frameInput);
    this.personSelect = el("select", "font:11px sans-serif;display:none");
    this.personSelect.title = "the person to pose (or click a figure)";
    this.personSelect.addEventListener("change", () => this.pickPerson(Number(this.personSelect.value)));
    bar.append(this.personSelect);
    this.posing = el("div", "display:none;flex-direction:column;gap:2px;flex:0 0 auto");
    const pbar = el("div", "display:flex;flex-wrap:wrap;gap:3px;align-items:center");
    this.presetSelect = el("select", "font:11px sans-serif");
    this.presetSelect.title = "start from a preset (clears the hand-set joints)";
    this.presetSelect.addEventListener("change", () => this.startFrom(this.presetSelect.value));
    const pbutton = buttonIn(pbar);
    pbar.append(this.presetSelect);
    pbutton("undo", "Undo the pose edit (Ctrl+Z in the viewer)", () => this.step(this.undo, this.redo));
    pbutton("redo", "Redo the pose edit (Ctrl+Shift+Z or Ctrl+Y in the viewer)", () => this.step(this.redo, this.undo));
    pbutton("mirror", "Mirror the pose left <-> right", () => this.mirror());
    this.jointName = el("span", "color:#ffd54a", "click a joint to pose it");
    pbar.append(this.jointName);
    this.dofs = el("div", "display:grid;grid-template-columns:auto 1fr 44px;gap:1px 4px;align-items:center");
    this.posing.append(pbar, this.dofs);
    this.root.append(stage, bar, this.posing);
    // added before OrbitControls' own: a press on a gizmo ring turns the joint instead of the view
    this.canvas.addEventListener("pointerdown", (e) => {
      this.canvas.focus({ preventScroll: true }); // its keys (F, Ctrl+Z) are the viewer's
      this.down = this.gizmoDown(e) ? null : [e.clientX, e.clientY];
      this.orbiting = this.down != null && this.controls.enabled;
    });
    this.root.addEventListener("pointerenter", () => { hovered = this; });
    this.root.addEventListener("pointerleave", () => { if (hovered === this) hovered = null; });
    this.canvas.addEventListener("pointermove", (e) => { if (this.drag) this.gizmoMove(e); });
    this.canvas.addEventListener("pointerup", (e) => {
      if (this.drag) { this.gizmoUp(); return; }
      if (this.down && Math.hypot(e.clientX - this.down[0], e.clientY - this.down[1]) < 4) this.pick(e);
    });
    this.canvas.addEventListener("keydown", (e) => {
      if (!e.ctrlKey && !e.metaKey && !e.altKey && e.key.toLowerCase() === "f") { e.preventDefault(); this.frameFigure(); }
    });
    for (const ev of ["pointerdown", "wheel", "keydown", "contextmenu"]) {
      this.root.addEventListener(ev, (e) => e.stopPropagation()); // the graph canvas must not pan/zoom too
    }
    // OrbitControls follows a drag on the document, which the Vue node renderer's node never lets a
    // pointermove reach (the free view did not turn there): the drag's moves and its end are handed
    // to it here, and stop here in both renderers (so it never sees one twice).
    for (const [ev, handler] of [["pointermove", "_onPointerMove"], ["pointerup", "_onPointerUp"]]) {
      this.root.addEventListener(ev, (e) => {
        if (!this.orbiting) return;
        e.stopPropagation();
        this.controls[handler]?.(e);
        if (ev === "pointerup") this.orbiting = false;
      });
    }
  }

  get kind() { return this.node.comfyClass ?? this.node.type; }
  get visible() { return !this.node.flags?.collapsed && this.canvas.isConnected && this.canvas.clientWidth > 0; }

  // --- data ---
  async refresh() {
    if (!this.visible) { this.stale = true; return; }
    this.stale = false;
    this.root.dataset.nodeId = String(this.node.id); // known only once a loaded workflow configured the node
    const seq = (this.seq = (this.seq ?? 0) + 1);
    const { body, note, request, sources } = sceneRequest(this.node, this.frame);
    this.request = request;
    this.asked = JSON.stringify(body); // what this scene is of (watch() compares the graph with it)
    try {
      const scene = await getJson("/pose_factory/viewer/scene", body);
      const people = scene.people ?? [];
      const ms = await Promise.all(people.map((p) => (!p.drawn ? null : p.type === "rig" ? rigMesh(p.rig) : mesh(p.subject))));
      const props = await Promise.all((scene.props ?? []).map(propMesh));
      if (seq !== this.seq) return; // a newer request is on its way
      this.sources = people.length === sources.length ? sources : people.map(() => ({}));
      this.full = scene;
      if (this.picked == null || this.picked >= people.length || !people[this.picked].drawn) this.picked = this.ownPerson();
      this.data = this.personView();
      this.setPeople(ms);
      this.pose(scene);
      this.setCameras(scene);
      this.props.clear();
      for (const pm of props) this.props.add(pm);
      if (!this.framed) this.frameAll();
      this.note = [note, ...(scene.notes ?? [])].filter(Boolean).join("; ");
      this.error = null;
      this.frameInput.max = String(scene.frames - 1);
      this.showPeople();
      if (this.poser()) await this.showPosing(); else this.posing.style.display = "none";
    } catch (err) {
      if (seq !== this.seq) return;
      this.error = String(err?.message ?? err);
    }
    this.draw();
  }

  // The scene as this viewer's data: the picked person's pose, angles, joints and keypoints at the top
  // level (the gizmo and the checks read them), every person under `people`.
  personView() {
    const p = this.full.people?.[this.picked];
    if (!p?.drawn || p.type === "rig") return this.full; // a rig: the first mannequin's at the top level
    const { pose, angles, dof_axes, positions, rotations, keypoints, subject } = p;
    return { ...this.full, pose, angles, dof_axes, positions, rotations, keypoints, subject, person: this.picked };
  }

  // The person this viewer stands for: the first whose poses (a pose node) or subject (Mannequin)
  // is this node; else the first drawn.
  ownPerson() {
    const people = this.full.people ?? [];
    const mine = (this.sources ?? []).findIndex((s, k) => people[k]?.drawn
      && (s.poses === this.node || s.subject === this.node));
    if (mine >= 0) return mine;
    const first = people.findIndex((p) => p.drawn);
    return first >= 0 ? first : 0;
  }

  // The Pose From JSON node the picked person's poses come from (the gizmo writes its `joints`), or null.
  poser() {
    if (this.kind !== POSING_NODE) return null; // the gizmo lives in the Pose From JSON viewers
    const person = this.full?.people?.[this.picked];
    if (!person?.drawn || person.type === "rig") return null; // the gizmo poses a mannequin (a rig takes the same poses)
    const src = this.sources?.[this.picked]?.poses;
    return src && (src.comfyClass ?? src.type) === POSING_NODE ? src : null;
  }

  pickPerson(k) {
    if (k === this.picked || !this.full?.people?.[k]?.drawn) return;
    this.picked = k;
    this.selected = null;
    this.data = this.personView();
    const f = this.figures.find((x) => x.index === k);
    if (f) { this.body = f.body; this.meshData = f.meshData; }
    this.pose(this.full);
    this.showPeople();
    if (this.poser()) this.showPosing(); else this.posing.style.display = "none";
    this.draw();
  }

  // The person picker: shown with two people or more; says where each one's poses come from.
  showPeople() {
    const people = this.full?.people ?? [];
    this.personSelect.style.display = people.length > 1 ? "" : "none";
    this.personSelect.replaceChildren();
    people.forEach((p, k) => {
      const src = this.sources?.[k]?.poses;
      const from = (p.type === "rig" ? (p.drawn ? " (custom rig)" : " (custom rig: not drawn)") : "")
        + (p.drawn && src ? ` · poses: ${src.title ?? src.type} #${src.id}` : "");
      const o = new Option(`person ${k}${from}`, String(k));
      o.disabled = !p.drawn;
      this.personSelect.append(o);
    });
    this.personSelect.value = String(this.picked ?? 0);
  }

  // One figure per drawn person (its rest mesh; posed in pose()), tagged with its number.
  setPeople(ms) {
    const people = this.full.people ?? [];
    const same = this.figures.length === ms.filter(Boolean).length
      && this.figures.every((f) => ms[f.index] === f.meshData);
    if (!same) {
      this.figure.clear();
      this.figure.add(this.jointDots);
      this.figures = [];
      ms.forEach((m, k) => {
        if (!m) return;
        const rigged = people[k].type === "rig"; // a custom rig: one clay colour, moved by its bones
        const n = rigged ? m.vertex_bone.length : m.vertex_joint.length;
        const geo = new THREE.BufferGeometry();
        geo.setAttribute("position", new THREE.BufferAttribute(new Float32Array(n * 3), 3));
        if (!rigged) {
          const colour = new Float32Array(n * 3);
          const tint = (part) => new THREE.Color().setHSL(((part * 0.137) % 1), 0.25, 0.62);
          for (let t = 0; t < m.triangle_part.length; t++) {
            const c = tint(m.triangle_part[t]);
            for (let i = 0; i < 3; i++) colour.set([c.r, c.g, c.b], m.triangles[3 * t + i] * 3);
          }
          geo.setAttribute("color", new THREE.BufferAttribute(colour, 3));
        }
        geo.setIndex(m.triangles);
        const body = new THREE.Mesh(geo, rigged ? new THREE.MeshLambertMaterial({ color: 0xc8b49c, side: THREE.DoubleSide })
          : new THREE.MeshLambertMaterial({ vertexColors: true }));
        body.userData.colour = body.material.color.clone();
        body.userData.person = k;
        this.figure.add(body);
        this.figures.push({ index: k, body, meshData: m });
      });
    }
    const picked = this.figures.find((f) => f.index === this.picked) ?? this.figures[0];
    this.body = picked?.body ?? null;
    this.meshData = picked?.meshData ?? null;
    this.tags?.removeFromParent();
    this.tags = new THREE.Group();
    if (people.length > 1) this.figure.add(this.tags);
  }

  pose(scene) {
    const people = scene.people ?? [];
    for (const f of this.figures) this.skin(f, people[f.index]);
    // the picked person bright, the others dimmed; a number tag over each head (two people or more)
    this.tags.clear();
    for (const f of this.figures) {
      const mine = f.index === this.picked;
      f.body.material.color.copy(f.body.userData.colour).multiplyScalar(mine || people.length < 2 ? 1 : 0.55);
      if (people.length < 2) continue;
      const box = new THREE.Box3().setFromBufferAttribute(f.body.geometry.attributes.position);
      const tag = label(`P${f.index}`, mine ? "#ffd54a" : "#bbbbbb");
      tag.position.set((box.min.x + box.max.x) / 2, (box.min.y + box.max.y) / 2, box.max.z + 0.12);
      tag.userData.person = f.index;
      this.tags.add(tag);
    }
    this.jointDots.clear();
    if (!this.poser() || !this.data.positions) return;
    const m = this.meshData, pos = this.data.positions;
    const posable = new Set(Object.keys(this.data.angles));
    m.joint_names.forEach((name, j) => {
      if (!posable.has(name) || /(thumb|index|middle|ring|pinky)/.test(name)) return;
      const dot = new THREE.Mesh(new THREE.SphereGeometry(name === this.selected ? 0.03 : 0.022, 12, 8),
        new THREE.MeshBasicMaterial({ color: name === this.selected ? 0xffd54a : 0x4fc3f7, depthTest: false }));
      dot.renderOrder = 2;
      dot.position.set(pos[3 * j], pos[3 * j + 1], pos[3 * j + 2]);
      dot.userData.joint = name;
      this.jointDots.add(dot);
    });
    this.drawGizmo();
  }

  // A person's figure posed: each rest vertex moved rigidly with its joint (the core's data); a
  // custom rig's with its bone, by the bone's 3x4 matrix from the core (pose_factory.viewer.rigview).
  skin(f, person) {
    const out = f.body.geometry.attributes.position.array;
    if (person.type === "rig") {
      const v = f.meshData.vertices, b = f.meshData.vertex_bone, s = person.skin;
      for (let i = 0, n = b.length; i < n; i++) {
        const r = 12 * b[i], x = v[3 * i], y = v[3 * i + 1], z = v[3 * i + 2];
        out[3 * i] = s[r] * x + s[r + 1] * y + s[r + 2] * z + s[r + 3];
        out[3 * i + 1] = s[r + 4] * x + s[r + 5] * y + s[r + 6] * z + s[r + 7];
        out[3 * i + 2] = s[r + 8] * x + s[r + 9] * y + s[r + 10] * z + s[r + 11];
      }
      f.body.geometry.attributes.position.needsUpdate = true;
      f.body.geometry.computeVertexNormals();
      f.body.geometry.computeBoundingSphere();
      return;
    }
    const m = f.meshData, pos = person.positions, rot = person.rotations, rest = m.rest, v = m.vertices;
    for (let i = 0, n = m.vertex_joint.length; i < n; i++) {
      const j = m.vertex_joint[i];
      const x = v[3 * i] - rest[3 * j], y = v[3 * i + 1] - rest[3 * j + 1], z = v[3 * i + 2] - rest[3 * j + 2];
      const r = 9 * j;
      out[3 * i] = rot[r] * x + rot[r + 1] * y + rot[r + 2] * z + pos[3 * j];
      out[3 * i + 1] = rot[r + 3] * x + rot[r + 4] * y + rot[r + 5] * z + pos[3 * j + 1];
      out[3 * i + 2] = rot[r + 6] * x + rot[r + 7] * y + rot[r + 8] * z + pos[3 * j + 2];
    }
    f.body.geometry.attributes.position.needsUpdate = true;
    f.body.geometry.computeVertexNormals();
    f.body.geometry.computeBoundingSphere();
  }

  // The gizmo: one ring per DOF of the selected joint, around the DOF's world axis (the scene's
  // dof_axes, from the core's rig); dragging a ring turns that DOF only, within its limits.
  drawGizmo() {
    const j = this.meshData.joint_names.indexOf(this.selected);
    const axes = this.data?.dof_axes?.[this.selected];
    const table = this.limitsTable?.joints.find((x) => x.name === this.selected);
    if (j < 0 || !axes || !table) return;
    const p = this.data.positions;
    const centre = new THREE.Vector3(p[3 * j], p[3 * j + 1], p[3 * j + 2]);
    table.dofs.forEach((d, k) => {
      const axis = new THREE.Vector3(...axes[k]).normalize();
      const u = new THREE.Vector3(1, 0, 0).cross(axis);
      if (u.lengthSq() < 1e-6) u.set(0, 1, 0).cross(axis);
      u.normalize();
      const v = axis.clone().cross(u);
      const r = 0.1 + 0.025 * k, pts = [];
      for (let i = 0; i < 48; i++) {
        for (const t of [i, i + 1]) {
          const a = (t / 48) * 2 * Math.PI;
          pts.push(centre.clone().addScaledVector(u, r * Math.cos(a)).addScaledVector(v, r * Math.sin(a)));
        }
      }
      const ring = new THREE.LineSegments(new THREE.BufferGeometry().setFromPoints(pts),
        new THREE.LineBasicMaterial({ color: [0xff5252, 0x69f0ae, 0x448aff][k], depthTest: false }));
      ring.renderOrder = 3;
      ring.userData.gizmo = { joint: this.selected, dof: d.name, axis, centre };
      this.jointDots.add(ring);
    });
  }

  // Where the pointer's ray meets the plane of a ring, relative to its centre (null: edge-on).
  ringPoint(e, g) {
    const rect = this.canvas.getBoundingClientRect();
    const ray = new THREE.Raycaster();
    ray.setFromCamera(new THREE.Vector2(((e.clientX - rect.left) / rect.width) * 2 - 1,
      -((e.clientY - rect.top) / rect.height) * 2 + 1), this.camera);
    const o = ray.ray.origin, d = ray.ray.direction, den = g.axis.dot(d);
    if (Math.abs(den) < 1e-3) return null;
    const t = g.axis.dot(g.centre.clone().sub(o)) / den;
    return o.clone().addScaledVector(d, t).sub(g.centre);
  }

  gizmoDown(e) {
    const hit = this.hits(e).find((h) => h.object.userData.gizmo);
    if (!hit) return false;
    const g = hit.object.userData.gizmo;
    const from = this.ringPoint(e, g);
    if (!from) return false;
    this.controls.enabled = false; // this drag turns the joint, not the view
    this.canvas.setPointerCapture?.(e.pointerId);
    this.drag = { g, from, start: this.data.angles[g.joint][g.dof], value: null, snap: this.snapshot() };
    return true;
  }

  gizmoMove(e) {
    const drag = this.drag;
    const to = drag && this.ringPoint(e, drag.g);
    if (!to) return;
    const turn = Math.atan2(drag.g.axis.dot(drag.from.clone().cross(to)), drag.from.dot(to)) * 180 / Math.PI;
    const value = this.setDof(drag.g.joint, drag.g.dof, drag.start + turn, false);
    if (value != null) drag.value = value;
  }

  gizmoUp() {
    const drag = this.drag;
    this.drag = null;
    this.controls.enabled = true;
    if (drag?.value != null && drag.value !== drag.start) { this.undo.push(drag.snap); this.redo.length = 0; }
  }

  setCameras(scene) {
    this.rigs.clear();
    const { width, height } = scene.render;
    for (const cam of scene.cameras) {
      const r = cam.rotation, l = new THREE.Vector3(...cam.location), k = cam.intrinsics;
      const axis = (j) => new THREE.Vector3(r[0][j], r[1][j], r[2][j]);
      const right = axis(0), up = axis(1), back = axis(2);
      const d = 0.35; // metres: the frustum's drawn depth
      const corner = (px, py) => {
        const u = (px - k.cx) / k.fx, v = (k.cy - py) / k.fy;
        if (k.orthographic) return l.clone().addScaledVector(right, u).addScaledVector(up, v).addScaledVector(back, -d);
        return l.clone().addScaledVector(right, u * d).addScaledVector(up, v * d).addScaledVector(back, -d);
      };
      const cs = [corner(-0.5, -0.5), corner(width - 0.5, -0.5), corner(width - 0.5, height - 0.5), corner(-0.5, height - 0.5)];
      const pts = [];
      for (let i = 0; i < 4; i++) pts.push(l, cs[i], cs[i], cs[(i + 1) % 4]);
      pts.push(cs[0].clone().lerp(cs[1], 0.5), cs[0].clone().lerp(cs[1], 0.5).addScaledVector(up, 0.06)); // up tick
      const lines = new THREE.LineSegments(new THREE.BufferGeometry().setFromPoints(pts),
        new THREE.LineBasicMaterial({ color: cam.index === this.view ? 0xffd54a : 0xff8a65 }));
      lines.userData.view = cam.index;
      const tag = label(String(cam.index));
      tag.position.copy(l).addScaledVector(up, 0.1);
      tag.userData.view = cam.index;
      this.rigs.add(lines, tag);
    }
  }

  // --- looking ---
  lookThrough(index) {
    const cam = this.data?.cameras?.[index];
    if (!cam) return;
    const r = cam.rotation, k = cam.intrinsics;
    const basis = new THREE.Matrix4().makeBasis(new THREE.Vector3(r[0][0], r[1][0], r[2][0]),
      new THREE.Vector3(r[0][1], r[1][1], r[2][1]), new THREE.Vector3(r[0][2], r[1][2], r[2][2]));
    this.camera.position.set(...cam.location);
    this.camera.quaternion.setFromRotationMatrix(basis);
    const back = new THREE.Vector3(r[0][2], r[1][2], r[2][2]);
    // the orbit's pivot: the point of the view axis nearest the figure's centre
    const ahead = Math.max(0.5, this.figureCentre().sub(this.camera.position).dot(back.clone().negate()));
    this.controls.target.copy(this.camera.position).addScaledVector(back, -ahead);
    if (!k.orthographic) this.camera.fov = (2 * Math.atan((k.height / 2) / k.fy) * 180) / Math.PI;
    this.camera.updateProjectionMatrix();
    this.view = index;
    this.setCameras(this.data);
    this.draw();
  }

  // --- navigation: the free view turns around the figure's centre and zooms toward it ---
  // the box around every person drawn (the "figure" the navigation turns around and frames)
  figureBox() {
    const box = new THREE.Box3();
    for (const f of this.figures.length ? this.figures : [{ body: this.body }]) {
      f.body.geometry.computeBoundingBox();
      box.union(f.body.geometry.boundingBox);
    }
    return box;
  }

  figureCentre() { return this.body ? this.figureBox().getCenter(new THREE.Vector3()) : this.controls.target.clone(); }

  figureRadius() { return this.body ? Math.max(0.2, this.figureBox().getSize(new THREE.Vector3()).length() / 2) : 1; }

  // half the narrower field of view (radians) of the viewer's camera
  halfFov() {
    const v = (this.camera.fov * Math.PI) / 360;
    return Math.min(v, Math.atan(Math.tan(v) * (this.camera.aspect || 1)));
  }

  // the wheel's range: outside the figure, and never so far that it is a speck (or the cameras fall out)
  zoomLimits() {
    const r = this.figureRadius(), fit = r / Math.sin(this.halfFov());
    const c = this.figureCentre();
    const cams = Math.max(0, ...(this.data?.cameras ?? []).map((k) => c.distanceTo(new THREE.Vector3(...k.location))));
    return [r * 1.15, Math.max(fit * 6, (cams + r) / Math.sin(this.halfFov()) * 1.5)];
  }

  // The wheel: toward or away from the figure's centre (the pivot comes back to it), within zoomLimits.
  zoom(deltaY) {
    if (!this.body) return;
    const c = this.figureCentre(), [lo, hi] = this.zoomLimits();
    const dir = this.camera.position.clone().sub(c);
    const d = Math.min(hi, Math.max(lo, dir.length() * Math.exp(Math.max(-0.5, Math.min(0.5, deltaY * 0.0015)))));
    this.controls.target.copy(c);
    this.camera.position.copy(c).addScaledVector(dir.normalize(), d);
    this.controls.update();
  }

  // A pan keeps the pivot within the figure: it never wanders off where the figure leaves the view.
  keepPivot() {
    if (!this.body || this.keeping) return;
    const c = this.figureCentre(), r = this.figureRadius();
    const off = this.controls.target.clone().sub(c);
    if (off.length() <= r) return;
    const back = off.clone().setLength(off.length() - r);
    this.controls.target.sub(back);
    this.camera.position.sub(back);
    this.keeping = true;
    this.controls.update();
    this.keeping = false;
  }

  // Frames the figure (the "frame" button, F): its centre the pivot, seen whole from the current side.
  frameFigure() {
    if (!this.body) return;
    this.view = null;
    this.camera.fov = 35;
    this.camera.updateProjectionMatrix();
    const c = this.figureCentre();
    const dir = this.camera.position.clone().sub(c);
    if (dir.lengthSq() < 1e-6) dir.set(0.45, -1, 0.35);
    this.controls.target.copy(c);
    this.camera.position.copy(c).addScaledVector(dir.normalize(), (this.figureRadius() / Math.sin(this.halfFov())) * 1.05);
    this.controls.update();
    this.setCameras(this.data);
    this.draw();
  }

  // The first view of a scene: the figure's centre the pivot, far enough to see every camera too.
  frameAll() {
    this.framed = true;
    const c = this.figureCentre();
    let radius = this.figureRadius();
    for (const k of this.data.cameras) radius = Math.max(radius, c.distanceTo(new THREE.Vector3(...k.location)));
    const distance = Math.min(this.zoomLimits()[1], (radius / Math.sin((this.camera.fov * Math.PI) / 360)) * 0.7);
    this.controls.target.copy(c);
    this.camera.position.copy(c).add(new THREE.Vector3(0.45, -1, 0.35).normalize().multiplyScalar(distance));
    this.camera.updateProjectionMatrix();
    this.controls.update();
  }

  freeView() {
    this.view = null;
    this.camera.fov = 35;
    this.camera.updateProjectionMatrix();
    this.controls.update();
    this.setCameras(this.data ?? { cameras: [], render: {} });
    this.draw();
  }

  // The camera of the current view, in the core's terms: a listed camera (location, look_at,
  // focal length for the render's width) and its projection (intrinsics as cameras.intrinsics).
  currentCamera() {
    const { width, height } = this.data.render;
    if (this.view != null) return this.data.cameras[this.view];
    const e = this.camera.matrixWorld.elements;
    const rotation = [[e[0], e[4], e[8]], [e[1], e[5], e[9]], [e[2], e[6], e[10]]];
    const fy = (height / 2) / Math.tan((this.camera.fov * Math.PI) / 360);
    return {
      location: this.camera.position.toArray(), rotation,
      intrinsics: { fx: fy, fy, cx: width / 2 - 0.5, cy: height / 2 - 0.5, width, height, orthographic: false },
      focal_length: (fy * SENSOR_WIDTH) / width, look_at: this.controls.target.toArray(),
    };
  }

  // the picked person's 18 body keypoints in the current view (pixels, 1: in front of the camera)
  previewKeypoints() {
    if (!this.data?.keypoints) return null;
    const cam = this.currentCamera();
    const pts = projectPoints(cam, this.data.keypoints.slice(0, 18 * 3));
    return { camera: cam, keypoints: pts.map(([x, y, d]) => [x, y, d > 0 ? 1 : 0]) };
  }

  // every drawn person's 18 body keypoints in the current view, in the scene's order
  previewPeople() {
    if (!this.data) return null;
    const cam = this.currentCamera();
    // (a rig's keypoint without a bone is in "missing", one the loader's hide list takes in "hidden": never drawn)
    const people = (this.full?.people ?? []).filter((p) => p.drawn).map((p) => ({ index: p.index,
      keypoints: projectPoints(cam, p.keypoints.slice(0, 18 * 3))
        .map(([x, y, d], i) => [x, y, d > 0 && !p.missing?.includes(i) && !p.hidden?.includes(i) ? 1 : 0]) }));
    return { camera: cam, people };
  }

  togglePreview() {
    this.showPreview = !this.showPreview;
    this.draw();
  }

  setPreviewMode(mode) {
    this.previewMode = this.modeSelect.value = mode;
    this.showPreview = true;
    this.draw();
  }

  drawPreview() {
    const on = this.showPreview && this.data;
    this.preview.style.display = this.previewLabel.style.display = on ? "block" : "none";
    if (!on) return;
    const mode = this.previewMode, name = { openpose: "OpenPose", depth: "Depth", normal: "Normal" }[mode];
    this.previewLabel.textContent = `${name} preview`;
    this.preview.title = `${name} preview of the current view, drawn in the browser (the batch's images come from the worker)`;
    const { width, height } = this.data.render;
    this.preview.width = width; this.preview.height = height;
    const g = this.preview.getContext("2d");
    if (mode !== "openpose") {
      const geos = [...this.figures.map((f) => f.body.geometry), ...this.props.children.map((m) => m.geometry)];
      const px = renderPass(geos, passCamera(this.currentCamera(), width, height), width, height);
      g.putImageData(passImage(px, width, height, mode), 0, 0);
      return;
    }
    g.fillStyle = "#000"; g.fillRect(0, 0, width, height);
    const inFrame = (p) => p[2] > 0 && p[0] >= -0.5 && p[0] < width - 0.5 && p[1] >= -0.5 && p[1] < height - 0.5;
    const s = Math.max(width, height) >= 500 ? 2 : 1;
    for (const { keypoints: kp } of this.previewPeople().people) { // every person, as the worker draws them
      LIMBS.forEach(([a, b], i) => {
        if (!inFrame(kp[a]) || !inFrame(kp[b])) return;
        const [r, gg, bb] = COLOURS[i].map((c) => Math.round(c * 0.6));
        g.strokeStyle = `rgb(${r},${gg},${bb})`; g.lineWidth = 8 * s; g.lineCap = "round";
        g.beginPath(); g.moveTo(kp[a][0], kp[a][1]); g.lineTo(kp[b][0], kp[b][1]); g.stroke();
      });
      kp.forEach((p, i) => {
        if (!inFrame(p)) return;
        g.fillStyle = `rgb(${COLOURS[i].join(",")})`;
        g.beginPath(); g.arc(p[0], p[1], 4 * s, 0, 2 * Math.PI); g.fill();
      });
    }
  }

  draw() {
    if (!this.visible) return; // collapsed or off screen: nothing drawn, nothing held
    if (this.stale) { this.refresh(); return; }
    const w = Math.max(1, this.canvas.clientWidth), h = Math.max(1, this.canvas.clientHeight);
    if (this.canvas.width !== w || this.canvas.height !== h) { this.canvas.width = w; this.canvas.height = h; }
    this.camera.aspect = w / h;
    this.camera.updateProjectionMatrix();
    this.draws = (this.draws ?? 0) + 1;
    const t0 = performance.now();
    const r = renderer();
    r.setSize(w, h, false);
    r.render(this.scene, this.camera);
    this.canvas.getContext("2d").drawImage(r.domElement, 0, 0);
    this.lastFrameMs = performance.now() - t0;
    const where = this.view != null ? `view ${this.view}` : "free view";
    this.status.textContent = this.error ? `⚠ ${this.error}`
      : `${where}${this.data ? ` · frame ${this.data.frame}/${this.data.frames - 1}` : ""}`
        + `${(this.full?.people?.length ?? 0) > 1 ? ` · person ${this.picked}${this.poser() ? " (posed here)" : ""}` : ""}${this.note ? ` · ${this.note}` : ""}`;
    this.status.style.color = this.error ? "#ff8a80" : "#ddd";
    this.drawPreview();
  }

  hits(e) {
    const rect = this.canvas.getBoundingClientRect();
    const ndc = new THREE.Vector2(((e.clientX - rect.left) / rect.width) * 2 - 1, -((e.clientY - rect.top) / rect.height) * 2 + 1);
    const ray = new THREE.Raycaster();
    ray.params.Line.threshold = 0.02;
    ray.setFromCamera(ndc, this.camera);
    return ray.intersectObjects(this.jointDots?.children ?? [], false);
  }

  pick(e) {
    // a joint dot wins (the small target, drawn on top); then the camera under the pointer
    const hit = this.hits(e).find((h) => h.object.userData.joint);
    if (hit) { this.select(hit.object.userData.joint); return; }
    const view = this.cameraAt(e.clientX, e.clientY);
    if (view != null) { this.lookThrough(view); return; }
    const person = this.personAt(e);
    if (person != null) this.pickPerson(person);
  }

  // The person whose figure (or number tag) is under the pointer, nearest first; null with one person.
  personAt(e) {
    if ((this.full?.people?.length ?? 0) < 2) return null;
    const rect = this.canvas.getBoundingClientRect();
    const ray = new THREE.Raycaster();
    ray.setFromCamera(new THREE.Vector2(((e.clientX - rect.left) / rect.width) * 2 - 1,
      -((e.clientY - rect.top) / rect.height) * 2 + 1), this.camera);
    const tag = ray.intersectObjects(this.tags?.children ?? [], false)[0];
    if (tag) return tag.object.userData.person;
    const hit = ray.intersectObjects(this.figures.map((f) => f.body), false)[0];
    return hit ? hit.object.userData.person : null;
  }

  // The camera drawn under a point of the page (pixels): a number tag under it (tags are drawn on
  // top, the nearest last), else the frustum whose nearest line is closest on screen, within PICK_PX.
  cameraAt(x, y) {
    const rect = this.canvas.getBoundingClientRect();
    const px = x - rect.left, py = y - rect.top, w = rect.width, h = rect.height;
    this.camera.updateMatrixWorld();
    const toScreen = (p) => {
      const q = p.clone().applyMatrix4(this.camera.matrixWorldInverse);
      if (q.z > -this.camera.near) return null; // behind the eye
      const n = q.clone().applyMatrix4(this.camera.projectionMatrix);
      return [(n.x + 1) / 2 * w, (1 - n.y) / 2 * h, -q.z];
    };
    const pxPerMetre = (depth) => h / (2 * depth * Math.tan((this.camera.fov * Math.PI) / 360));
    let tag = null;
    for (const o of this.rigs.children) {
      if (!o.isSprite) continue;
      const s = toScreen(o.position);
      if (!s) continue;
      const k = pxPerMetre(s[2]);
      if (Math.abs(px - s[0]) <= (o.scale.x * k) / 2 && Math.abs(py - s[1]) <= (o.scale.y * k) / 2 && (!tag || s[2] < tag.depth)) {
        tag = { view: o.userData.view, depth: s[2] };
      }
    }
    if (tag) return tag.view;
    let best = null;
    for (const o of this.rigs.children) {
      if (!o.isLineSegments) continue;
      const pos = o.geometry.attributes.position, a = new THREE.Vector3(), b = new THREE.Vector3();
      for (let i = 0; i + 1 < pos.count; i += 2) {
        const sa = toScreen(a.fromBufferAttribute(pos, i)), sb = toScreen(b.fromBufferAttribute(pos, i + 1));
        if (!sa || !sb) continue;
        const dx = sb[0] - sa[0], dy = sb[1] - sa[1], len2 = dx * dx + dy * dy;
        const t = len2 > 0 ? Math.max(0, Math.min(1, ((px - sa[0]) * dx + (py - sa[1]) * dy) / len2)) : 0;
        const d = Math.hypot(px - sa[0] - t * dx, py - sa[1] - t * dy);
        if (d <= PICK_PX && (!best || d < best.d)) best = { view: o.userData.view, d };
      }
    }
    return best ? best.view : null;
  }

  // --- posing (Pose From JSON: the pose lives in its `joints` widget, the base in `preset`) ---
  widget(name, node = this.poser() ?? this.node) { return node.widgets?.find((w) => w.name === name); }

  stored() {
    const text = String(this.widget("joints")?.value ?? "").trim();
    let data = {};
    try { data = text ? JSON.parse(text) : {}; } catch { data = {}; }
    const whole = data && typeof data === "object" && Object.keys(data).length
      && Object.keys(data).every((k) => ["preset", "mirror", "hands", "joints", "offset", "grounded"].includes(k));
    return whole ? { ...data, joints: { ...(data.joints ?? {}) } } : { joints: { ...(data ?? {}) } };
  }

  store(pose, remember = true) {
    const target = this.poser() ?? this.node; // the picked person's Pose From JSON node
    const w = this.widget("joints", target);
    const text = JSON.stringify(pose.mirror || pose.hands || pose.offset || pose.grounded != null || pose.preset
      ? pose : pose.joints);
    if (remember && text === w.value) return; // nothing changed: no undo step
    if (remember) { this.undo.push(this.snapshot()); this.redo.length = 0; }
    w.value = text;
    w.callback?.(text);
    target.setDirtyCanvas?.(true, true);
    this.refresh();
    if (target !== this.node) refreshAll(); // the viewer on that node shows it too
  }

  // one undo step: the posing node and its pose (a viewer may pose several people's nodes)
  snapshot() {
    const node = this.poser() ?? this.node;
    return { node, joints: this.widget("joints", node)?.value, preset: this.widget("preset", node)?.value };
  }

  step(from, to) {
    const s = from.pop();
    if (!s) return;
    const node = s.node ?? this.node;
    to.push({ node, joints: this.widget("joints", node)?.value, preset: this.widget("preset", node)?.value });
    this.widget("joints", node).value = s.joints;
    this.widget("preset", node).value = s.preset;
    node.setDirtyCanvas?.(true, true);
    refreshAll(); // every viewer showing this pose
  }

  startFrom(preset) {
    this.undo.push(this.snapshot()); this.redo.length = 0;
    this.widget("preset").value = preset;
    this.store({ joints: {} }, false);
  }

  mirror() {
    const pose = this.stored();
    pose.mirror = !pose.mirror;
    if (!pose.mirror) delete pose.mirror;
    this.store(pose);
  }

  select(joint) {
    this.selected = joint;
    this.pose(this.data);
    this.showPosing();
    this.draw();
  }

  // Sets one DOF (degrees), clamped to the joint's limits, as the core's limits table says.
  setDof(joint, dof, value, remember = true) {
    const table = this.limitsTable?.joints.find((j) => j.name === joint);
    const d = table?.dofs.find((x) => x.name === dof);
    if (!d) return null;
    const v = Math.round(Math.min(d.hi, Math.max(d.lo, Number(value))) * 10) / 10;
    const pose = this.stored();
    // a mirrored pose stores the other side's angle (and a centre joint's twist/side/yaw/roll negated)
    const target = pose.mirror ? table.mirror : joint;
    pose.joints[target] = { ...(pose.joints[target] ?? {}), [dof]: pose.mirror ? v * d.mirror_sign : v };
    this.store(pose, remember);
    return v;
  }

  async showPosing() {
    this.posing.style.display = "flex";
    this.limitsTable = await limits();
    if (!this.presetSelect.options.length) {
      for (const p of this.limitsTable.presets) this.presetSelect.append(new Option(p, p));
    }
    this.presetSelect.value = this.widget("preset")?.value ?? "rest";
    this.dofs.replaceChildren();
    const joint = this.limitsTable.joints.find((j) => j.name === this.selected);
    const who = (this.full?.people?.length ?? 0) > 1 ? `person ${this.picked}: ` : "";
    this.jointName.textContent = who + (joint ? joint.name : "click a joint to pose it");
    if (!joint || !this.data) return;
    for (const d of joint.dofs) {
      const now = this.data.angles[joint.name]?.[d.name] ?? 0;
      const name = document.createElement("span");
      name.textContent = `${d.name} ${d.lo}..${d.hi}`;
      name.title = d.meaning;
      const slider = document.createElement("input");
      Object.assign(slider, { type: "range", min: d.lo, max: d.hi, step: 1, value: now });
      slider.dataset.dof = d.name;
      const number = document.createElement("input");
      Object.assign(number, { type: "number", min: d.lo, max: d.hi, step: 1, value: now });
      number.style.width = "44px";
      number.dataset.dof = d.name;
      const commit = (v) => { const got = this.setDof(joint.name, d.name, v); slider.value = number.value = got; };
      slider.addEventListener("change", () => commit(slider.value));
      number.addEventListener("change", () => commit(number.value));
      this.dofs.append(name, slider, number);
    }
  }

  // --- cameras from the view ---
  cameraList() {
    if (this.kind === CAMERA_LIST) return this.node;
    const request = this.request ?? downstreamRequest(this.node);
    const input = request?.inputs?.find((i) => i.name === "cameras");
    const src = input?.link != null ? inputNode(request, input) : null;
    return (src?.comfyClass ?? src?.type) === CAMERA_LIST ? src : null;
  }

  addView() {
    const list = this.cameraList();
    if (!list || !this.data) {
      app.extensionManager?.toast?.add?.({ severity: "warn", summary: "Add this view",
        detail: "Link a Camera List node to Request Pose Batch's cameras first.", life: 4000 });
      return null;
    }
    const cam = this.currentCamera();
    const round = (v) => Math.round(v * 1e4) / 1e4;
    const entry = { location: cam.location.map(round), look_at: cam.look_at.map(round),
      focal_length: round(cam.focal_length), sensor_width: SENSOR_WIDTH };
    if (this.view != null) { // an existing view, copied as it is
      const c = this.data.cameras[this.view];
      const back = [c.rotation[0][2], c.rotation[1][2], c.rotation[2][2]];
      Object.assign(entry, { look_at: c.location.map((x, i) => round(x - back[i])), roll: c.roll ?? 0,
        focal_length: c.focal_length, sensor_width: c.sensor_width, orthographic: c.orthographic,
        ortho_scale: c.ortho_scale, shift: c.shift });
    }
    const w = list.widgets.find((x) => x.name === "cameras");
    let cams = [];
    try { cams = JSON.parse(w.value); } catch { cams = []; }
    if (!Array.isArray(cams)) cams = [];
    cams.push(entry);
    w.value = JSON.stringify(cams);
    w.callback?.(w.value);
    list.setDirtyCanvas?.(true, true);
    refreshAll();
    return entry;
  }
}

// --- wiring --------------------------------------------------------------------------------------------
const viewers = new Set();
let pending = null;
function refreshAll() {
  clearTimeout(pending);
  pending = setTimeout(() => { for (const v of viewers) if (v.node.graph) v.refresh(); }, 120);
}

// Any change of what a viewer shows — a link made or removed anywhere upstream, a node deleted, a
// primitive's value, a node without a viewer of its own — is seen by comparing the scene request the
// graph makes now with the one the viewer's scene (or error) came from; a stale one is asked again.
function watch() {
  for (const v of viewers) {
    if (!v.node.graph || !v.visible || v.asked === undefined || v.drag) continue;
    let now;
    try { now = JSON.stringify(sceneRequest(v.node, v.frame).body); } catch { continue; }
    if (now !== v.asked) v.refresh();
  }
}

// --- the viewer's keys: Ctrl+Z / Ctrl+Shift+Z / Ctrl+Y undo and redo its pose, never the graph ---------
// ComfyUI's change tracker listens to window keydown in the capture phase (before any element) and
// undoes the graph in the next animation frame (ChangeTracker.undoRedo); its keybindings listen to
// window keydown too. A key the viewer takes is marked here (synchronously, before that frame), stops
// there, and the tracker is told it was handled.
let hovered = null; // the viewer under the pointer
const viewerKeys = new WeakSet();

function undoKey(e) {
  if (!(e.ctrlKey || e.metaKey) || e.altKey) return null;
  const k = e.key.toLowerCase();
  if (k === "z") return e.shiftKey ? "redo" : "undo";
  if (k === "y" && !e.shiftKey) return "redo";
  return null;
}

// The viewer a key belongs to: the one holding the focus (its 3D view or a button), else the one under
// the pointer while nothing that edits text has the focus. Text boxes keep their own undo.
function keyOwner(e) {
  const t = e.target;
  const inside = [...viewers].find((v) => v.node.graph && v.root.contains(t));
  const edits = t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.isContentEditable);
  if (inside) return edits && t.type !== "range" ? null : inside;
  if (edits || !hovered?.node.graph) return null;
  return hovered;
}

function guardTracker() {
  const tracker = app.extensionManager?.workflow?.activeWorkflow?.changeTracker;
  const proto = tracker && Object.getPrototypeOf(tracker);
  if (!proto || proto.__poseFactoryViewerKeys || typeof proto.undoRedo !== "function") return;
  const undoRedo = proto.undoRedo;
  proto.undoRedo = function (e) {
    if (viewerKeys.has(e)) return Promise.resolve(true); // the viewer's: nothing for the graph to do
    return undoRedo.apply(this, arguments);
  };
  proto.__poseFactoryViewerKeys = true;
}

function onKey(e) {
  const what = undoKey(e);
  const v = what && keyOwner(e);
  if (!v || (!v.poser() && !v.undo.length && !v.redo.length)) return;
  guardTracker();
  viewerKeys.add(e);
  e.preventDefault();
  e.stopPropagation();
  if (!e.repeat) (what === "undo" ? v.step(v.undo, v.redo) : v.step(v.redo, v.undo));
}

function attach(node) {
  const viewer = new Viewer(node);
  node.__poseFactoryViewer = viewer;
  viewers.add(viewer);
  const widget = node.addDOMWidget("pf_viewer", "pose_factory_viewer", viewer.root, {
    serialize: false, hideOnZoom: false,
    getValue: () => undefined, setValue: () => {},
    getMinHeight: () => (node.comfyClass === POSING_NODE ? VIEWER_HEIGHT + 110 : VIEWER_HEIGHT),
  });
  widget.serialize = false;
  const onRemoved = node.onRemoved;
  node.onRemoved = function () {
    viewers.delete(viewer);
    viewer.resize.disconnect();
    viewer.controls.dispose();
    return onRemoved?.apply(this, arguments);
  };
  const onCollapse = node.collapse;
  node.collapse = function () {
    const r = onCollapse?.apply(this, arguments);
    if (!this.flags?.collapsed) setTimeout(() => viewer.draw(), 0);
    return r;
  };
  for (const w of node.widgets ?? []) {
    if (w === widget) continue;
    const cb = w.callback;
    w.callback = function () { const r = cb?.apply(this, arguments); refreshAll(); return r; };
  }
  setTimeout(() => viewer.refresh(), 0);
  return viewer;
}

app.registerExtension({
  name: "PoseFactory.viewer",
  async setup() {
    // for scripted checks (scripts/viewer_harness_check.js) and the bench
    window.__poseFactoryViewer = { viewers, projectPoints, refreshAll, THREE, results };
    window.addEventListener("keydown", onKey, true);
    setInterval(watch, 500);
    // a Motion Clip or Pose From Photo ran: its poses are kept on the server under this key
    api.addEventListener("executed", (e) => {
      const key = e.detail?.output?.pose_factory_poses?.[0];
      const id = String(e.detail?.display_node ?? e.detail?.node ?? "");
      const node = app.graph?.getNodeById?.(id);
      if (!key || !node) return;
      results.set(id, { key, inputs: JSON.stringify(fragment(node).inputs) });
      refreshAll();
    });
  },
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!VIEWER_NODES.includes(nodeData.name)) return;
    const created = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const r = created?.apply(this, arguments);
      attach(this);
      const [w, h] = this.size;
      this.setSize?.([Math.max(w, 360), Math.max(h, h + 40)]);
      return r;
    };
    const conn = nodeType.prototype.onConnectionsChange;
    nodeType.prototype.onConnectionsChange = function () {
      const r = conn?.apply(this, arguments);
      refreshAll();
      return r;
    };
  },
});
