// The parts of three.js the 3D viewer (web/js/viewer.js) uses; scripts/build_viewer_bundle.sh
// bundles them (tree-shaken, minified) into web/js/vendor/three.module.min.js.
export {
  Box3, BufferAttribute, BufferGeometry, CanvasTexture, Color, DirectionalLight,
  Float32BufferAttribute, GridHelper, Group, HemisphereLight, LineBasicMaterial, LineSegments, Matrix4,
  Mesh, MeshBasicMaterial, MeshLambertMaterial, OrthographicCamera, PerspectiveCamera, Quaternion, Raycaster,
  Scene, ShaderMaterial, SphereGeometry, Sprite, SpriteMaterial, Vector2, Vector3, WebGLRenderer, WebGLRenderTarget,
  DoubleSide, FloatType, REVISION,
} from "three";
export { OrbitControls } from "three/examples/jsm/controls/OrbitControls.js";
// the props' mesh files (Pose Prop's mesh_file: .glb, .obj, .stl, .ply), as the worker reads them
export { GLTFLoader } from "three/examples/jsm/loaders/GLTFLoader.js";
export { OBJLoader } from "three/examples/jsm/loaders/OBJLoader.js";
export { STLLoader } from "three/examples/jsm/loaders/STLLoader.js";
export { PLYLoader } from "three/examples/jsm/loaders/PLYLoader.js";
export { mergeVertices } from "three/examples/jsm/utils/BufferGeometryUtils.js";
