// facegen's browser app: sign in with an API key, upload a skull, follow the cases, open one in the 3D viewer.
// Plain ES module on the service's own API (same origin, bearer key from session storage); the 3D view is the
// offline case viewer's own code (viewer.js, mountViewer) on the data of the case's viewer.html.
import { mountViewer } from "/app/viewer.js";

const $ = (id) => document.getElementById(id);
const KEY = "facegen.key";
const POLL_MS = 2000;
const ACTIVE = new Set(["queued", "running"]);
const WRITERS = new Set(["examiner", "admin"]);  // the roles that may upload and delete
let pollTimer = null;
let shownCase = null;
let role = null;  // the key's role, from GET /v1/me: the app offers only what the key may do

class ApiError extends Error {}

function message(body, status) {  // the service's 4xx/5xx detail as one readable line
  const detail = body && body.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) return detail.map((d) => (d.loc || []).slice(1).join(".") + ": " + d.msg).join("; ");
  return "the service answered " + status;
}

async function api(path, options = {}) {  // a call with the key; 401 signs out
  const headers = { Authorization: "Bearer " + sessionStorage.getItem(KEY), ...(options.headers || {}) };
  const answer = await fetch(path, { ...options, headers, credentials: "omit", cache: "no-store" });
  if (answer.ok) return answer;
  let body = null;
  try { body = await answer.json(); } catch (err) { body = null; }
  if (answer.status === 401) {
    signOut("Signed out: " + message(body, answer.status));
  }
  throw new ApiError(answer.status + ": " + message(body, answer.status));
}

function show(page) {
  for (const id of ["sign-in-page", "cases-page", "case-page"]) $(id).hidden = id !== page;
  $("sign-out").hidden = page === "sign-in-page";
}

function signOut(why = "") {
  sessionStorage.removeItem(KEY);
  clearTimeout(pollTimer);
  role = null;
  delete document.body.dataset.role;
  $("sign-in-error").textContent = why;
  $("who").textContent = "";
  if (location.hash !== "#/") history.replaceState(null, "", "#/");
  if (shownCase !== null) { location.reload(); return; }  // drop the 3D view and its data with the key
  show("sign-in-page");
}

async function signIn(event) {
  event.preventDefault();
  const key = $("key").value.trim();
  $("sign-in-error").textContent = "";
  sessionStorage.setItem(KEY, key);
  try {
    await api("/v1/cases");
  } catch (err) {
    sessionStorage.removeItem(KEY);
    show("sign-in-page");
    $("sign-in-error").textContent = "This key was refused (" + err.message + ")";
    return;
  }
  $("key").value = "";
  route();
}

async function whoAmI() {  // the key's tenant and role: a viewer sees no upload form and no delete button
  const me = await (await api("/v1/me")).json();
  role = me.role;
  document.body.dataset.role = role;
  $("who").textContent = "signed in: " + me.role + ", " + me.tenant;
  $("new-case").hidden = !WRITERS.has(role);
}

// --- the case list and the upload ------------------------------------------------------------------------

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.append(td);
  return td;
}

function renderCases(cases) {
  const body = $("cases").tBodies[0];
  body.replaceChildren();
  for (const c of cases) {
    const row = document.createElement("tr");
    row.dataset.caseId = c.id;
    row.dataset.status = c.status;
    const link = document.createElement("a");
    link.href = "#/case/" + c.id;
    link.textContent = c.id.slice(0, 8);
    cell(row, "").append(link);
    cell(row, new Date(c.created_at).toLocaleString());
    cell(row, c.sex);
    cell(row, c.age === null ? "unknown" : String(c.age));
    cell(row, c.bmi);
    cell(row, c.status + (c.error ? ": " + c.error : "")).className = "status-" + c.status;
    const bar = document.createElement("progress");
    bar.max = 1;
    bar.value = c.progress;
    cell(row, "").append(bar, " " + Math.round(100 * c.progress) + "%");
    body.append(row);
  }
  $("cases-empty").hidden = cases.length > 0;
}

async function refreshCases() {
  clearTimeout(pollTimer);
  if (location.hash.startsWith("#/case/") || !sessionStorage.getItem(KEY)) return;
  try {
    const { cases } = await (await api("/v1/cases")).json();
    renderCases(cases);
    if (cases.some((c) => ACTIVE.has(c.status))) pollTimer = setTimeout(refreshCases, POLL_MS);
  } catch (err) {
    $("upload-error").textContent = "Could not list the cases: " + err.message;
  }
}

async function upload(event) {
  event.preventDefault();
  const form = event.target, data = new FormData();
  $("upload-error").textContent = "";
  for (const field of ["sex", "age", "bmi"]) if (form.elements[field].value !== "") data.append(field, form.elements[field].value);
  for (const field of ["scan", "landmarks", "genotypes"]) {  // sent as plain bytes: the service checks what they hold
    const file = form.elements[field].files[0];
    const name = field === "genotypes" ? "genotypes" : file?.name;  // a genotype file's name can name the person
    if (file) data.append(field, new File([file], name, { type: "application/octet-stream" }));
  }
  $("upload-status").textContent = "uploading…";
  try {
    const { id } = await (await api("/v1/cases", { method: "POST", body: data })).json();
    $("upload-status").textContent = "case " + id.slice(0, 8) + " queued";
    form.reset();
  } catch (err) {
    $("upload-status").textContent = "";
    $("upload-error").textContent = "Upload refused: " + err.message;
  }
  refreshCases();
}

// --- one case ----------------------------------------------------------------------------------------

async function download(caseId, name, open = false) {  // files need the key: fetched, then saved from memory
  try {
    const blob = await (await api("/v1/cases/" + caseId + "/files/" + encodeURIComponent(name))).blob();
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = name.split("/").pop();
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 60000);
  } catch (err) {
    $("case-error").textContent = "Could not download " + name + ": " + err.message;
  }
}

async function deleteCase(caseId) {
  if (!confirm("Delete case " + caseId.slice(0, 8) + " and every file of it? This cannot be undone.")) return;
  try {
    await api("/v1/cases/" + encodeURIComponent(caseId), { method: "DELETE" });
  } catch (err) {
    $("case-error").textContent = "Could not delete the case: " + err.message;
    return;
  }
  // the list shown until it is fetched anew must not offer the deleted case
  for (const row of document.querySelectorAll("#cases tr[data-case-id]")) if (row.dataset.caseId === caseId) row.remove();
  location.hash = "#/";  // back to the list (a page with a 3D view reloads without it)
}

function renderFiles(c) {
  const list = $("file-list");
  list.replaceChildren();
  for (const name of c.files) {
    const item = document.createElement("li"), button = document.createElement("button");
    button.type = "button";
    button.className = "download";
    button.dataset.name = name;
    button.textContent = name;
    item.append(button);
    list.append(item);
  }
  for (const button of document.querySelectorAll("#case-files button.download")) {
    button.hidden = !c.files.includes(button.dataset.name);
    button.onclick = () => download(c.id, button.dataset.name);
  }
  $("case-files").hidden = false;
}

async function openViewer(c) {  // the case's own viewer page: its data and panels, run by the shared viewer code
  const text = await (await api("/v1/cases/" + c.id + "/files/viewer.html")).text();
  const page = document.createElement("template");  // inert: its style and scripts never apply or run
  page.innerHTML = text;
  const data = JSON.parse(page.content.getElementById("viewer-data").textContent);
  const box = $("viewer-box");
  box.replaceChildren(...["view", "controls", "shown-panel", "colour-legend"].map((id) =>
    document.adoptNode(page.content.getElementById(id))));
  box.hidden = false;
  mountViewer(data, { useHash: false });
}

async function showCase(caseId) {
  clearTimeout(pollTimer);
  if (shownCase !== null && shownCase !== caseId) { location.reload(); return; }  // one 3D view per page
  show("case-page");
  $("case-title").textContent = "Case " + caseId;
  $("case-error").textContent = "";
  $("delete-case").hidden = !WRITERS.has(role);
  $("delete-case").onclick = () => deleteCase(caseId);
  let c;
  try {
    c = await (await api("/v1/cases/" + encodeURIComponent(caseId))).json();
  } catch (err) {
    $("case-error").textContent = err.message;
    return;
  }
  $("case-state").textContent = c.status + (c.status === "done" ? "" : " (" + Math.round(100 * c.progress) + "%)") +
    " · sex " + c.sex + " · age " + (c.age === null ? "unknown" : c.age) + " · BMI " + c.bmi;
  $("case-state").dataset.status = c.status;
  if (c.error) $("case-error").textContent = c.error;
  if (ACTIVE.has(c.status)) { pollTimer = setTimeout(() => showCase(caseId), POLL_MS); return; }
  if (c.status !== "done" || shownCase === caseId) return;
  shownCase = caseId;
  renderFiles(c);
  try {
    await openViewer(c);
  } catch (err) {
    $("case-error").textContent = "3D view unavailable: " + err.message;
    document.body.dataset.webgl = "error: " + err.message;
  }
}

async function route() {
  if (!sessionStorage.getItem(KEY)) { show("sign-in-page"); return; }
  if (role === null) {
    try {
      await whoAmI();
    } catch (err) {
      if (sessionStorage.getItem(KEY)) $("sign-in-error").textContent = "Could not read the key's role: " + err.message;
      show("sign-in-page");
      return;
    }
  }
  const found = location.hash.match(/^#\/case\/([0-9a-f-]{1,64})$/);
  if (found) { showCase(found[1]); return; }
  if (shownCase !== null) { location.reload(); return; }
  show("cases-page");
  refreshCases();
}

$("sign-in").addEventListener("submit", signIn);
$("sign-out").addEventListener("click", () => signOut());
$("upload").addEventListener("submit", upload);
window.addEventListener("hashchange", route);
route();
