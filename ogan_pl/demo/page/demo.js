// The O-GAN demo page: every action is one POST to the local server (ogan_pl/demo/server.py), whose
// answer is either images (PNG data URLs) or {"error": one line}, shown in #message.
"use strict";

const state = { info: null, a: null, b: null, pending: 0, held: [] };
const $ = (id) => document.getElementById(id);

function showMessage(text) {
  const box = $("message");
  box.textContent = text;
  box.hidden = false;
}

function clearMessage() {
  $("message").hidden = true;
  $("message").textContent = "";
}

// While a request is out, the buttons wait: repeated clicks do not queue work on the server.
function setBusy(busy) {
  $("busy").hidden = !busy;
  if (busy) {
    state.held = [...document.querySelectorAll("button")].filter((button) => !button.disabled);
    state.held.forEach((button) => { button.disabled = true; });
  } else {
    state.held.forEach((button) => { button.disabled = false; });
    state.held = [];
  }
}

async function api(path, body) {
  state.pending += 1;
  if (state.pending === 1) setBusy(true);
  try {
    const options = body === undefined ? {} : {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    };
    let response;
    try {
      response = await fetch(path, options);
    } catch (err) {
      throw new Error("the demo server does not answer: is ogan-demo still running?");
    }
    let data;
    try {
      data = await response.json();
    } catch (err) {
      throw new Error(`the server answered ${response.status} without a message`);
    }
    if (!response.ok) throw new Error(data.error || `the server answered ${response.status}`);
    return data;
  } finally {
    state.pending -= 1;
    if (state.pending === 0) setBusy(false);
  }
}

// Run an action; its failure becomes the one line on the page.
function action(work) {
  return async (event) => {
    clearMessage();
    try {
      await work(event);
    } catch (err) {
      showMessage(err.message);
    }
  };
}

function picture(src, alt) {
  const img = document.createElement("img");
  img.src = src;
  img.alt = alt;
  img.className = "pixels";
  return img;
}

function setSlot(which, dataUrl) {
  state[which] = dataUrl;
  const img = $(`slot-${which}`).querySelector("img");
  img.src = dataUrl;
  img.hidden = false;
}

function needImage(which) {
  if (!state[which]) {
    throw new Error(`image ${which.toUpperCase()} is empty: click a sample, upload an image or draw one`);
  }
  return state[which];
}

// ------------------------------------------------------------------ sample
// A number field as the request sends it: empty or not a number -> null, which the server refuses by name.
function numberIn(id) {
  const text = $(id).value.trim();
  return text === "" || Number.isNaN(Number(text)) ? null : Number(text);
}

async function sample() {
  const seed = numberIn("seed");
  const n = numberIn("n-samples");
  const { images } = await api("/api/sample", { seed, n });
  const strip = $("samples");
  strip.replaceChildren(...images.map((src, i) => {
    const img = picture(src, `sample ${i} of seed ${seed}`);
    img.addEventListener("click", (event) => setSlot(event.shiftKey ? "b" : "a", src));
    return img;
  }));
  if (!state.a) setSlot("a", images[0]);
  if (!state.b && images.length > 1) setSlot("b", images[1]);
}

// ------------------------------------------------------------------ upload and draw
function readFile(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(new Error(`${file.name} cannot be read`));
    reader.readAsDataURL(file);
  });
}

async function upload(event) {
  const input = event.target;
  const file = input.files[0];
  input.value = "";  // choosing the same file again is a new upload
  if (!file) return;
  const limitKb = state.info.limits.max_upload_kb;
  if (file.size > limitKb * 1024) {
    throw new Error(`${file.name} is ${Math.ceil(file.size / 1024)} KB; this demo takes files up to ${limitKb} KB`);
  }
  const { image } = await api("/api/image", { image: await readFile(file), name: file.name });
  setSlot($("target").value, image);
}

function setUpPad() {
  const pad = $("pad");
  const context = pad.getContext("2d");
  const clear = () => { context.fillStyle = "#000"; context.fillRect(0, 0, pad.width, pad.height); };
  clear();
  let drawing = false;
  const at = (event) => {
    const box = pad.getBoundingClientRect();
    return [(event.clientX - box.left) * pad.width / box.width, (event.clientY - box.top) * pad.height / box.height];
  };
  pad.addEventListener("pointerdown", (event) => {
    drawing = true;
    pad.setPointerCapture(event.pointerId);
    context.strokeStyle = "#fff";
    context.lineWidth = 20;
    context.lineCap = context.lineJoin = "round";
    context.beginPath();
    context.moveTo(...at(event));
    context.lineTo(...at(event));
    context.stroke();
  });
  pad.addEventListener("pointermove", (event) => {
    if (!drawing) return;
    context.lineTo(...at(event));
    context.stroke();
  });
  const stop = () => { drawing = false; };
  pad.addEventListener("pointerup", stop);
  pad.addEventListener("pointercancel", stop);
  $("clear-pad-btn").addEventListener("click", clear);
  $("use-drawing-btn").addEventListener("click", action(async () => {
    const { image } = await api("/api/image", { image: pad.toDataURL("image/png"), name: "the drawing", drawn: true });
    setSlot($("target").value, image);
  }));
}

// ------------------------------------------------------------------ reconstruct, interpolate, edit
async function reconstruct() {
  const image = needImage("a");
  const result = await api("/api/reconstruct", { image, steps: Number($("steps").value) });
  $("recon-input").src = image;
  $("recon-encoder").src = result.encoder;
  $("recon-inversion").src = result.inversion;
  $("psnr-encoder").textContent = `PSNR ${result.psnr_encoder.toFixed(2)} dB`;
  $("psnr-inversion").textContent = `PSNR ${result.psnr_inversion.toFixed(2)} dB, ${result.steps} steps`;
  $("reconstruction").hidden = false;
}

async function interpolate() {
  const body = { a: needImage("a"), b: needImage("b"), frames: Number($("frames").value), steps: 0 };
  const { frames } = await api("/api/interpolate", body);
  $("interpolation").replaceChildren(...frames.map((src, i) => picture(src, `frame ${i}`)));
}

function strengths() {
  return [...$("sliders").querySelectorAll("input")].map((slider) => Number(slider.value));
}

async function edit() {
  const result = await api("/api/edit", { image: needImage("a"), strengths: strengths(), steps: 0 });
  $("edit-unedited").src = result.unedited;
  $("edit-edited").src = result.edited;
  $("edit-result").hidden = false;
}

function setUpSliders(names, bound) {
  const box = $("sliders");
  box.replaceChildren(...names.map((name, i) => {
    const row = document.createElement("label");
    row.className = "slider";
    const title = document.createElement("span");
    title.textContent = name;
    const slider = document.createElement("input");
    Object.assign(slider, { type: "range", min: -bound, max: bound, step: 0.1, value: 0, id: `strength-${i}` });
    const value = document.createElement("output");
    value.textContent = "0";
    slider.addEventListener("input", () => { value.textContent = Number(slider.value).toFixed(1); });
    slider.addEventListener("change", action(async () => { if (state.a) await edit(); }));
    row.append(title, slider, value);
    return row;
  }));
  const none = names.length === 0;
  $("no-directions").hidden = !none;
  $("edit-btn").disabled = $("reset-btn").disabled = none;
}

// ------------------------------------------------------------------ start
async function start() {
  const info = await api("/api/info");
  state.info = info;
  const kind = info.channels === 1 ? "grayscale" : "RGB";
  $("model-info").textContent =
    `${info.ckpt}: ${info.resolution}x${info.resolution} ${kind}, ${info.z_dim}-d codes, ` +
    `${info.g_iter} generator iterations, ${info.weights} weights`;
  $("upload-rule").textContent =
    `Uploads: ${info.resolution}x${info.resolution} ${kind} images up to ${info.limits.max_upload_kb} KB.`;
  const limits = info.limits;
  $("steps").max = limits.max_steps;
  $("steps").value = Math.min(100, limits.max_steps);
  $("steps-value").textContent = $("steps").value;
  $("frames").max = limits.max_frames;
  $("frames").value = Math.min(8, limits.max_frames);
  $("frames-value").textContent = $("frames").value;
  $("n-samples").max = limits.max_samples;
  $("n-samples").value = Math.min(8, limits.max_samples);
  setUpSliders(info.directions, limits.max_strength);
  $("steps").addEventListener("input", () => { $("steps-value").textContent = $("steps").value; });
  $("frames").addEventListener("input", () => { $("frames-value").textContent = $("frames").value; });
  $("sample-btn").addEventListener("click", action(sample));
  $("new-seed-btn").addEventListener("click", action(async () => {
    $("seed").value = Math.floor(Math.random() * 1e6);
    await sample();
  }));
  $("upload").addEventListener("change", action(upload));
  $("reconstruct-btn").addEventListener("click", action(reconstruct));
  $("interpolate-btn").addEventListener("click", action(interpolate));
  $("edit-btn").addEventListener("click", action(edit));
  $("reset-btn").addEventListener("click", action(async () => {
    $("sliders").querySelectorAll("input").forEach((slider) => { slider.value = 0; });
    $("sliders").querySelectorAll("output").forEach((value) => { value.textContent = "0"; });
    if (state.a) await edit();
  }));
  setUpPad();
  document.body.dataset.ready = "true";  // the browser tests wait for this
}

document.addEventListener("DOMContentLoaded", action(start));
