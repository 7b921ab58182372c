// The hrpose web page: an image (chosen or dropped) goes to POST /v1/pose, webcam frames to
// WS /v1/stream; people are drawn on the canvas with the model card's links and side colours.
// Plain browser JavaScript: no build step, no CDN. `window.hrpose` holds the last result (tests
// read it).
"use strict";

const $ = (id) => document.getElementById(id);
const view = $("view");
const ctx = view.getContext("2d");
const state = { card: null, key: sessionStorage.getItem("hrpose-key") || "", ws: null,
  stream: null, sent: null, sentAt: 0 };
window.hrpose = { last: null, drawn: 0, frames: 0, errors: 0 };

function authHeaders() {
  return state.key ? { Authorization: "Bearer " + state.key } : {};
}

function setStatus(text) { $("status").textContent = text || ""; }

async function loadCard() {
  let response;
  try {
    response = await fetch("/v1/model", { headers: authHeaders() });
  } catch (e) {
    setStatus("cannot reach the server"); setTimeout(loadCard, 2000); return;
  }
  if (response.status === 401) {
    $("key-box").hidden = false; setStatus("this server needs an API key"); return;
  }
  if (response.status === 503) { setStatus("model loading…"); setTimeout(loadCard, 1000); return; }
  state.card = await response.json();
  const c = state.card;
  $("model").textContent = `${c.name} · ${c.kind} · ${c.input_size.height}x${c.input_size.width}` +
    ` · ${c.backend} ${c.precision}`;
  setStatus("");
  document.body.dataset.ready = "1";
}

function draw(source, result) {
  const { width, height } = result.image;
  view.width = width; view.height = height;
  ctx.drawImage(source, 0, 0, width, height);
  const card = state.card;
  const thick = Math.max(1, Math.round(Math.max(width, height) / 250));
  const people = result.people.filter((p) => p.score >= card.thresholds.person);
  const seenAt = card.thresholds.keypoint;
  ctx.lineCap = "round";
  for (const person of people) {
    const [x, y, w, h] = person.box;
    ctx.strokeStyle = "#ffffff"; ctx.lineWidth = thick;
    ctx.strokeRect(x, y, w, h);
    const label = (person.track_id !== undefined ? `#${person.track_id} ` : "") + person.score.toFixed(2);
    const size = 5 * thick + 8;                      // px, like the drawings hrpose writes
    ctx.font = `${size}px sans-serif`;
    const top = Math.max(0, y - size - 4);
    ctx.fillStyle = "#000000"; ctx.fillRect(x, top, ctx.measureText(label).width + 6, size + 4);
    ctx.fillStyle = "#ffffff"; ctx.fillText(label, x + 3, top + size);
    const k = person.keypoints;
    const set = card.keypoints;                      // sizes: fractions of the body's
    set.links.forEach(([a, b], i) => {
      if (k[a][2] < seenAt || k[b][2] < seenAt) return;
      ctx.strokeStyle = set.link_colours[i];
      ctx.lineWidth = Math.max(1, Math.round((thick + 1) * set.link_widths[i]));
      ctx.beginPath(); ctx.moveTo(k[a][0], k[a][1]); ctx.lineTo(k[b][0], k[b][1]); ctx.stroke();
    });
    k.forEach(([jx, jy, score], j) => {
      if (score < seenAt) return;
      let radius = Math.max(1, Math.round((thick + 1) * set.joint_sizes[j]));
      if (set.joint_outlined[j]) {
        ctx.fillStyle = "#ffffff";
        ctx.beginPath(); ctx.arc(jx, jy, radius, 0, 2 * Math.PI); ctx.fill();
        radius = Math.max(1, radius - 1);
      }
      ctx.fillStyle = set.joint_colours[j];
      ctx.beginPath(); ctx.arc(jx, jy, radius, 0, 2 * Math.PI); ctx.fill();
    });
  }
  $("hint").hidden = true;
  $("people").textContent = String(people.length);
  $("server-ms").textContent = `${result.timing_ms.total.toFixed(1)} ms`;
  view.dataset.people = String(people.length);
  window.hrpose.last = result;
  window.hrpose.drawn += 1;
}

// A picture that failed leaves no earlier picture or figures behind: they would read as its.
function clearView() {
  ctx.clearRect(0, 0, view.width, view.height);
  view.dataset.people = "0";
  $("hint").hidden = false;
  for (const id of ["people", "server-ms", "latency"]) $(id).textContent = "–";
}

function failed(message) {
  window.hrpose.errors += 1;
  clearView();
  setStatus(message);
}

async function poseImage(file) {
  if (!state.card) { setStatus("the model is not ready"); return; }
  stopCamera();
  setStatus("…");
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch (e) {
    failed(`${file.name}: not an image this browser can read (choose a JPEG, PNG, BMP, GIF or WebP)`);
    return;
  }
  const start = performance.now();
  let response, result;
  try {
    response = await fetch("/v1/pose", { method: "POST", body: file,
      headers: { ...authHeaders(), "Content-Type": file.type || "application/octet-stream" } });
    result = await response.json();
  } catch (e) {
    failed(`${file.name}: no answer from the server (${e.message})`);
    return;
  }
  if (!response.ok) { failed(`${file.name}: ${result.error.message}`); return; }
  draw(bitmap, result);
  $("latency").textContent = `${(performance.now() - start).toFixed(1)} ms`;
  setStatus("");
}

async function startCamera() {
  if (!state.card) { setStatus("the model is not ready"); return; }
  try {
    state.stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
  } catch (e) {
    setStatus(`no camera: ${e.message}`); return;
  }
  const video = $("video");
  video.srcObject = state.stream;
  await video.play();
  const protocols = ["hrpose"].concat(state.key ? ["bearer." + state.key] : []);
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  state.ws = new WebSocket(scheme + location.host + "/v1/stream", protocols);
  state.ws.onopen = sendFrame;
  state.ws.onmessage = (event) => {
    const result = JSON.parse(event.data);
    window.hrpose.frames += 1;
    $("frames").textContent = String(window.hrpose.frames);
    if (result.error) { window.hrpose.errors += 1; setStatus(result.error.message); }
    else if (state.sent) {
      draw(state.sent, result);
      $("latency").textContent = `${(performance.now() - state.sentAt).toFixed(1)} ms`;
    }
    sendFrame();
  };
  state.ws.onclose = (event) => { if (state.stream) setStatus(`stream closed (${event.code})`); stopCamera(); };
  $("camera").textContent = "Stop webcam"; $("camera").classList.add("on");
}

function sendFrame() {
  // The frame sent is kept and drawn when its answer comes, so people match the picture.
  const video = $("video");
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN || !video.videoWidth) return;
  const frame = document.createElement("canvas");
  frame.width = video.videoWidth; frame.height = video.videoHeight;
  frame.getContext("2d").drawImage(video, 0, 0);
  frame.toBlob((blob) => {
    if (!state.ws || state.ws.readyState !== WebSocket.OPEN) return;
    state.sent = frame; state.sentAt = performance.now();
    state.ws.send(blob);
  }, "image/jpeg", 0.85);
}

function stopCamera() {
  const ws = state.ws, stream = state.stream;
  state.ws = null; state.stream = null;
  if (ws) ws.close();
  if (stream) stream.getTracks().forEach((t) => t.stop());
  $("camera").textContent = "Start webcam"; $("camera").classList.remove("on");
}

$("file").addEventListener("change", (e) => { if (e.target.files[0]) poseImage(e.target.files[0]); });
$("camera").addEventListener("click", () => (state.ws ? stopCamera() : startCamera()));
$("key").addEventListener("change", (e) => {
  state.key = e.target.value.trim(); sessionStorage.setItem("hrpose-key", state.key); loadCard();
});
const stage = $("stage");
stage.addEventListener("dragover", (e) => { e.preventDefault(); stage.classList.add("over"); });
stage.addEventListener("dragleave", () => stage.classList.remove("over"));
stage.addEventListener("drop", (e) => {
  e.preventDefault(); stage.classList.remove("over");
  const file = e.dataTransfer.files[0];
  if (file) poseImage(file);
});
loadCard();
