// facegen's 3D case viewer on three.js: the shared meshes (the skull) always, one face variant at a time, shown
// as the reconstructed face or, where the variant has one, as the complete head in one of its colourings.
// The page holds the meshes in #viewer-data (base64: float32 vertices, uint16 or uint32 triangles as
// index_bytes says, uint8 RGB colours); a head has its geometry once and one colour array per colouring.
// Canonical frame: +x the subject's left, +y up, +z forward (toward the camera in the front view), millimetres.
// The URL hash sets the state, e.g. #variant=F-age30-bmi20&opacity=0.2&colouring=uncertainty&view=profile
// (variant by name or index, opacity of the face 0-1, colouring skin or uncertainty, view front,
// three-quarter or profile); surface=head&head=1 shows the complete head in its colouring 1 (index or label).
// The offline page runs it on its own #viewer-data; the web app imports mountViewer and calls it with the data
// of a case's viewer.html, on the same panel markup (the ids below), without the URL hash.
import * as THREE from "three";
import { OrbitControls } from "three/addons/controls/OrbitControls.js";

const $ = (id) => document.getElementById(id);
const FOV_DEG = 30;
const MARKER_COLOUR = 0x22d3ee;

function fail(message) {
  $("error").textContent = "3D view unavailable: " + message;
  document.body.dataset.webgl = "error: " + message;
}

function decode(b64, Type) {
  const bytes = atob(b64);
  const raw = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) raw[i] = bytes.charCodeAt(i);
  return new Type(raw.buffer);
}

const SRGB_TO_LINEAR = Float32Array.from({ length: 256 }, (_, i) => {
  const c = i / 255;
  return c <= 0.04045 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
});

function linearColours(b64) {  // sRGB bytes to the linear values three.js works in
  const rgb = decode(b64, Uint8Array), linear = new Float32Array(rgb.length);
  for (let i = 0; i < rgb.length; i++) linear[i] = SRGB_TO_LINEAR[rgb[i]];
  return linear;
}

function buildMesh(spec) {  // one embedded surface as a three.js mesh; its plain and vertex colours kept
  const geometry = new THREE.BufferGeometry();
  geometry.setAttribute("position", new THREE.BufferAttribute(decode(spec.vertices, Float32Array), 3));
  geometry.setIndex(new THREE.BufferAttribute(decode(spec.faces, spec.index_bytes === 2 ? Uint16Array : Uint32Array), 1));
  geometry.computeVertexNormals();
  geometry.computeBoundingSphere();
  const coloured = spec.vertex_colours !== null;
  if (coloured) geometry.setAttribute("color", new THREE.BufferAttribute(linearColours(spec.vertex_colours), 3));
  const plain = new THREE.Color().setRGB(spec.colour[0], spec.colour[1], spec.colour[2], THREE.SRGBColorSpace);
  const material = new THREE.MeshStandardMaterial({
    color: plain.clone(), roughness: 0.7, metalness: 0.0, side: THREE.DoubleSide });
  const mesh = new THREE.Mesh(geometry, material);
  mesh.name = spec.name;
  mesh.userData = { plain, coloured, opacity: spec.opacity, slider: spec.transparency_slider };
  return mesh;
}

function buildHead(spec) {  // a complete head: its first colouring now, the others decoded when chosen
  const mesh = buildMesh({ ...spec, opacity: 1, transparency_slider: true,
    vertex_colours: spec.colourings[0].vertex_colours });
  Object.assign(mesh.userData, { coloured: false, palette: true, colourings: spec.colourings, shownColouring: 0,
    linear: spec.colourings.map((_, k) => k === 0 ? mesh.geometry.getAttribute("color").array.slice() : null) });
  return mesh;
}

function paintHead(mesh, k) {  // show a head's colouring k (its colour array swapped in place)
  const u = mesh.userData;
  if (u.shownColouring === k) return;
  u.linear[k] = u.linear[k] || linearColours(u.colourings[k].vertex_colours);
  const colours = mesh.geometry.getAttribute("color");
  colours.array.set(u.linear[k]);
  colours.needsUpdate = true;
  u.shownColouring = k;
}

function formatValue(value) {
  return String(Number(value.toPrecision(3)));
}

export function mountViewer(data, { useHash = true } = {}) {
  document.body.dataset.webgl = "pending";
  const canvas = $("view");
  let renderer;
  try {
    renderer = new THREE.WebGLRenderer({ canvas, antialias: true, preserveDrawingBuffer: true });
  } catch (err) {
    fail("this browser gave no WebGL context (" + err.message + ")");
    return;
  }
  renderer.setPixelRatio(window.devicePixelRatio || 1);
  const scene = new THREE.Scene();
  scene.background = new THREE.Color().setRGB(...data.background, THREE.SRGBColorSpace);
  const centre = new THREE.Vector3(...data.centre);
  const radius = data.radius;
  const camera = new THREE.PerspectiveCamera(FOV_DEG, 1, radius / 100, radius * 40);
  const headLight = new THREE.DirectionalLight(0xffffff, 2.6);  // a head light: moves with the camera
  headLight.position.set(0.3, 0.4, 1.0);
  headLight.target.position.set(0, 0, -1);
  camera.add(headLight, headLight.target);
  scene.add(camera, new THREE.HemisphereLight(0xffffff, 0x404040, 0.6));
  const controls = new OrbitControls(camera, canvas);

  // --- meshes: the shared ones now, each variant's when first shown ------------------------------
  const shared = new THREE.Group();
  data.shared.forEach((spec) => shared.add(buildMesh(spec)));
  scene.add(shared);
  const groups = data.variants.map(() => null);
  const heads = data.variants.map(() => null);  // each variant's complete head, a group of one mesh, once shown
  const headOf = (i) => (i >= 0 && data.variants[i].head) || null;
  const anyHead = data.variants.some((v, i) => headOf(i) !== null);
  const sliding = data.shared.concat(...data.variants.map((v) => v.meshes)).filter((m) => m.transparency_slider);
  const anyColours = data.shared.concat(...data.variants.map((v) => v.meshes)).some((m) => m.vertex_colours !== null);
  const state = { variant: -1, opacity: sliding.length ? sliding[0].opacity : 1, colouring: "skin",
    surface: "face", head: 0 };
  const headShown = () => state.surface === "head" && headOf(state.variant) !== null;
  const shownMeshes = () => shared.children.concat(state.variant < 0 ? []
    : headShown() ? heads[state.variant].children : groups[state.variant].children);

  let pending = false;
  function draw() { renderer.render(scene, camera); }
  function requestDraw() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; draw(); });
  }

  function style(mesh) {  // opacity and colouring of one mesh from the page's state
    const u = mesh.userData, material = mesh.material;
    const alpha = u.slider ? state.opacity : u.opacity;
    // a head's colourings are its natural colours; the uncertainty colouring shows it plain (it has no spread)
    const vertexColours = u.palette ? state.colouring !== "uncertainty" : state.colouring === "uncertainty" && u.coloured;
    const transparent = alpha < 0.999;
    if (material.vertexColors !== vertexColours || material.transparent !== transparent) material.needsUpdate = true;
    material.vertexColors = vertexColours;
    material.color.copy(vertexColours ? new THREE.Color(1, 1, 1) : u.plain);
    material.transparent = transparent;
    material.opacity = alpha;
    material.depthWrite = !transparent;
    mesh.visible = alpha > 0.001;
  }

  function refresh() {  // after any change of state: meshes, panels, status attributes, a new frame
    if (headShown() && !heads[state.variant]) {  // a head is built when first shown
      heads[state.variant] = new THREE.Group().add(buildHead(headOf(state.variant)));
      scene.add(heads[state.variant]);
    }
    groups.forEach((group, i) => { if (group) group.visible = i === state.variant && !headShown(); });
    heads.forEach((group, i) => { if (group) group.visible = i === state.variant && headShown(); });
    if (headShown()) paintHead(heads[state.variant].children[0], state.head);
    shownMeshes().forEach(style);
    const shown = $("shown");
    shown.textContent = "Shown:";
    shownMeshes().forEach((mesh) => {
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = "#" + mesh.userData.plain.getHexString(THREE.SRGBColorSpace);
      const alpha = mesh.userData.slider ? state.opacity : mesh.userData.opacity;
      const pct = Math.round(100 * (1 - alpha));
      const colouring = mesh.userData.palette && state.colouring !== "uncertainty"
        ? ": " + mesh.userData.colourings[state.head].label : "";
      shown.append(swatch, mesh.name + colouring + (pct > 0 ? " (" + pct + "% transparent)" : ""));
    });
    const uncertain = state.colouring === "uncertainty";
    document.querySelectorAll("input[name=surface]").forEach((input) => {
      input.checked = input.value === (headShown() ? "head" : "face");
      if (input.value === "head") input.disabled = headOf(state.variant) === null;
    });
    $("head-row").hidden = !headShown();
    document.body.dataset.surface = headShown() ? "head" : "face";
    document.body.dataset.headColouring = headShown() ? String(state.head) : "";
    $("colour-legend").hidden = !(uncertain && data.legend);
    $("colour-note").hidden = !uncertain || shownMeshes().some((mesh) => mesh.userData.coloured);
    document.body.dataset.variant = state.variant >= 0 ? data.variants[state.variant].name : "";
    document.body.dataset.colouring = state.colouring;
    requestDraw();
  }

  function showVariant(index) {
    if (index < 0 || index >= data.variants.length) return;
    if (!groups[index]) {
      groups[index] = new THREE.Group();
      data.variants[index].meshes.forEach((spec) => groups[index].add(buildMesh(spec)));
      scene.add(groups[index]);
    }
    state.variant = index;
    $("variant").value = String(index);
    const head = headOf(index);
    if (!head || state.head >= head.colourings.length) state.head = 0;
    $("head-colouring").replaceChildren(...(head ? head.colourings.map((c, k) => new Option(c.label, String(k))) : []));
    $("head-colouring").value = String(state.head);
    $("head-note").textContent = head ? head.note : "";
    clearMeasure();
    refresh();
  }

  function setSurface(surface) {  // the reconstructed face or the complete head (where the variant has one)
    if (surface !== "face" && surface !== "head") return;
    state.surface = surface;
    clearMeasure();
    refresh();
  }

  function setHeadColouring(k) {
    const head = headOf(state.variant);
    if (!head || !(k >= 0 && k < head.colourings.length)) return;
    state.head = k;
    $("head-colouring").value = String(k);
    refresh();
  }

  function setOpacity(opacity) {
    state.opacity = Math.min(1, Math.max(0, opacity));
    const slider = $("transparency");
    slider.value = String(Math.round(100 * (1 - state.opacity)));
    $("transparency-value").textContent = slider.value + "%";
    refresh();
  }

  function setColouring(colouring) {
    if (colouring !== "skin" && !(colouring === "uncertainty" && anyColours)) return;
    state.colouring = colouring;
    document.querySelectorAll("input[name=colouring]").forEach((input) => {
      input.checked = input.value === colouring;
    });
    refresh();
  }

  // --- camera: orbit about the centre of all meshes; the view buttons set yaw and frame the head -----
  function fitDistance() {
    const half = THREE.MathUtils.degToRad(FOV_DEG) / 2;
    const fit = Math.min(half, Math.atan(Math.tan(half) * camera.aspect));
    return 1.08 * radius / Math.sin(fit);
  }
  function setView(name) {
    const yaw = THREE.MathUtils.degToRad(data.views[name]);
    const distance = fitDistance();
    camera.position.set(centre.x + distance * Math.sin(yaw), centre.y, centre.z + distance * Math.cos(yaw));
    camera.up.set(0, 1, 0);
    controls.target.copy(centre);
    controls.minDistance = 0.15 * distance;
    controls.maxDistance = 5 * distance;
    controls.update();
    requestDraw();
  }
  function resize() {
    renderer.setSize(canvas.clientWidth, canvas.clientHeight, false);
    camera.aspect = canvas.clientWidth / Math.max(1, canvas.clientHeight);
    camera.updateProjectionMatrix();
    requestDraw();
  }

  // --- measuring: a click (not a drag) on a shown surface places a point; two points, one distance -----
  const measure = { on: false, points: [], group: new THREE.Group(), down: null };
  measure.group.renderOrder = 10;
  scene.add(measure.group);
  const raycaster = new THREE.Raycaster();
  function clearMeasure() {
    measure.points = [];
    measure.group.children.slice().forEach((child) => {
      measure.group.remove(child);
      child.geometry.dispose();
      child.material.dispose();
    });
    $("measure-result").textContent = measure.on ? "click a first point" : "";
    delete $("measure-result").dataset.distanceMm;
    requestDraw();
  }
  function addPoint(point, surface) {
    if (measure.points.length === 2) clearMeasure();
    measure.points.push({ point: point.clone(), surface });
    const marker = new THREE.Mesh(new THREE.SphereGeometry(radius * 0.012, 16, 12),
      new THREE.MeshBasicMaterial({ color: MARKER_COLOUR, depthTest: false, transparent: true }));
    marker.position.copy(point);
    marker.renderOrder = 10;
    measure.group.add(marker);
    const result = $("measure-result");
    if (measure.points.length === 1) {
      result.textContent = "on " + surface + "; click a second point";
    } else {
      const [a, b] = measure.points;
      const line = new THREE.Line(new THREE.BufferGeometry().setFromPoints([a.point, b.point]),
        new THREE.LineBasicMaterial({ color: MARKER_COLOUR, depthTest: false, transparent: true }));
      line.renderOrder = 10;
      measure.group.add(line);
      const distance = a.point.distanceTo(b.point);
      result.textContent = "Distance: " + distance.toFixed(1) + " mm (" + a.surface + " to " + b.surface + ")";
      result.dataset.distanceMm = distance.toFixed(3);
    }
    result.dataset.points = JSON.stringify(measure.points.map((p) => p.point.toArray().map((v) => +v.toFixed(3))));
    requestDraw();
  }
  function pick(event) {
    const rect = canvas.getBoundingClientRect();
    const ndc = new THREE.Vector2(2 * (event.clientX - rect.left) / rect.width - 1,
      1 - 2 * (event.clientY - rect.top) / rect.height);
    raycaster.setFromCamera(ndc, camera);
    const hits = raycaster.intersectObjects(shownMeshes().filter((mesh) => mesh.visible), false);
    if (hits.length) addPoint(hits[0].point, hits[0].object.name);
    else $("measure-result").textContent = "no surface there; click on the skull or the face";
  }
  canvas.addEventListener("pointerdown", (event) => { measure.down = [event.clientX, event.clientY]; });
  canvas.addEventListener("pointerup", (event) => {
    const down = measure.down;
    measure.down = null;
    if (measure.on && down && Math.hypot(event.clientX - down[0], event.clientY - down[1]) < 5) pick(event);
  });
  $("measure").addEventListener("click", () => {
    measure.on = !measure.on;
    $("measure").setAttribute("aria-pressed", String(measure.on));
    document.body.classList.toggle("measuring", measure.on);
    clearMeasure();
  });
  $("measure-clear").addEventListener("click", clearMeasure);

  // --- controls of the panel, and the URL hash --------------------------------------------------
  if (data.variants.length) {
    data.variants.forEach((variant, i) => $("variant").add(new Option(variant.name, String(i))));
    $("variant-row").hidden = data.variants.length < 2;
    $("variant").addEventListener("change", () => showVariant(Number($("variant").value)));
  }
  $("surface-row").hidden = !anyHead;
  document.querySelectorAll("input[name=surface]").forEach((input) => {
    input.addEventListener("change", () => { if (input.checked) setSurface(input.value); });
  });
  $("head-colouring").addEventListener("change", () => setHeadColouring(Number($("head-colouring").value)));
  $("slider-row").hidden = !sliding.length && !anyHead;
  $("transparency").addEventListener("input", () => setOpacity(1 - Number($("transparency").value) / 100));
  $("colouring-row").hidden = !anyColours;
  document.querySelectorAll("input[name=colouring]").forEach((input) => {
    input.addEventListener("change", () => { if (input.checked) setColouring(input.value); });
  });
  document.querySelectorAll("button[data-view]").forEach((button) => {
    button.addEventListener("click", () => setView(button.dataset.view));
  });
  if (data.legend) {
    const legend = data.legend, n = legend.stops.length;
    $("colour-title").textContent = legend.title;
    $("colour-bar").style.background = "linear-gradient(to right, " + legend.stops.map((c, i) =>
      "rgb(" + c.map((v) => Math.round(255 * v)).join(", ") + ") " + (100 * i / (n - 1)).toFixed(2) + "%").join(", ") + ")";
    $("colour-min").textContent = formatValue(legend.min_value) + " " + legend.units;
    $("colour-max").textContent = formatValue(legend.max_value) + " " + legend.units;
  }
  function applyHash() {
    if (!useHash) return;
    const params = new URLSearchParams(window.location.hash.replace(/^#/, ""));
    const wanted = params.get("variant");
    if (wanted !== null) {
      const named = data.variants.findIndex((variant) => variant.name === wanted);
      showVariant(named >= 0 ? named : /^[0-9]+$/.test(wanted) ? Number(wanted) : -1);
    }
    if (params.has("surface")) setSurface(params.get("surface"));
    const colouring = params.get("head"), head = headOf(state.variant);
    if (colouring !== null && head) {
      const named = head.colourings.findIndex((c) => c.label === colouring);
      setHeadColouring(named >= 0 ? named : /^[0-9]+$/.test(colouring) ? Number(colouring) : -1);
    }
    const opacity = Number(params.get("opacity") ?? NaN);
    if (Number.isFinite(opacity)) setOpacity(opacity);
    if (params.has("colouring")) setColouring(params.get("colouring"));
    if (params.has("view") && params.get("view") in data.views) setView(params.get("view"));
  }
  if (useHash) window.addEventListener("hashchange", applyHash);
  window.addEventListener("resize", resize);
  controls.addEventListener("change", requestDraw);

  // first frame now (synchronously), then report success for whoever checks the page (tests, screenshots)
  resize();
  setView("front");
  if (data.variants.length) showVariant(0);
  setOpacity(state.opacity);
  applyHash();
  draw();
  const gl = renderer.getContext(), status = gl.getError();
  if (status !== gl.NO_ERROR) { fail("WebGL error " + status + " while drawing"); return; }
  document.body.dataset.webgl = "ok";
}

const embedded = document.getElementById("viewer-data");
if (embedded) {  // the offline page: its own data
  try {
    mountViewer(JSON.parse(embedded.textContent));
  } catch (err) {
    fail(err.message);
  }
}
