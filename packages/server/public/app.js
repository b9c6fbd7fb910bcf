// The pali playground: plain browser ESM, no build step, talks only to the server that served it.

const $ = (id) => document.getElementById(id);
const form = $("form");
const fileInput = $("file");
const drop = $("drop");
const taskSelect = $("task");
const textField = $("text-field");
const textLabel = $("text-label");
const textInput = $("text");
const textHint = $("text-hint");
const maxTokensInput = $("max-tokens");
const apiKeyInput = $("api-key");
const runButton = $("run");
const stopButton = $("stop");
const stage = $("stage");
const image = $("image");
const overlay = $("overlay");
const placeholder = $("placeholder");
const output = $("output");
const legend = $("legend");
const timingsList = $("timings");
const errorBox = $("error");
const noteBox = $("note");
const statusLine = $("status");

const KEY_STORAGE = "pali.apiKey";

/** What each task asks for and how it reaches the server. */
const TASKS = {
  caption: { prompt: () => "caption en" },
  ask: {
    field: "Question",
    placeholder: "what colour is the circle?",
    hint: "Asked in English.",
    prompt: (text) => `answer en ${text}`,
  },
  ocr: { prompt: () => "ocr" },
  detect: {
    field: "Labels",
    placeholder: "circle ; square",
    hint: "One or more labels, separated by ;",
    endpoint: "/v1/detect",
  },
  segment: {
    field: "Labels",
    placeholder: "circle",
    hint: "One or more labels, separated by ;",
    endpoint: "/v1/segment",
  },
};

// Distinct on light and dark images; masks reuse them translucent.
const COLOURS = ["#e6194b", "#1f78b4", "#33a02c", "#ff7f00", "#6a3d9a", "#b15928", "#17becf", "#c51b7d"];

let picked = null; // { dataUrl, name }
let running = null; // AbortController of the request in flight
let serverReady = false;
const answers = {}; // the text field's value per task, so switching tasks does not lose it

// --- set-up -------------------------------------------------------------------------------------------------

apiKeyInput.value = localStorage.getItem(KEY_STORAGE) ?? "";
apiKeyInput.addEventListener("input", () => {
  const key = apiKeyInput.value.trim();
  if (key === "") localStorage.removeItem(KEY_STORAGE);
  else localStorage.setItem(KEY_STORAGE, key);
});

taskSelect.addEventListener("change", showTaskField);
textInput.addEventListener("input", () => {
  answers[taskSelect.value] = textInput.value;
  updateButtons();
});
fileInput.addEventListener("change", () => {
  const file = fileInput.files?.[0];
  if (file) pick(file);
});
for (const type of ["dragenter", "dragover"]) {
  drop.addEventListener(type, (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
}
for (const type of ["dragleave", "drop"]) drop.addEventListener(type, () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  const file = [...(event.dataTransfer?.files ?? [])].find((f) => f.type.startsWith("image/"));
  if (file) pick(file);
  else showError("That is not an image file.");
});
// A file dropped beside the drop zone would otherwise make the browser navigate away to it.
window.addEventListener("dragover", (event) => event.preventDefault());
window.addEventListener("drop", (event) => event.preventDefault());

form.addEventListener("submit", (event) => {
  event.preventDefault();
  run();
});
stopButton.addEventListener("click", () => running?.abort());

showTaskField();
checkHealth();

// --- inputs -------------------------------------------------------------------------------------------------

function showTaskField() {
  const task = TASKS[taskSelect.value];
  textField.hidden = task.field === undefined;
  if (task.field !== undefined) {
    textLabel.textContent = task.field;
    textInput.placeholder = task.placeholder;
    textHint.textContent = task.hint;
    textInput.value = answers[taskSelect.value] ?? "";
  }
  updateButtons();
}

function pick(file) {
  const reader = new FileReader();
  reader.addEventListener("load", () => {
    picked = { dataUrl: reader.result, name: file.name };
    clearResult();
    image.src = picked.dataUrl;
    image.alt = `The chosen image, ${file.name}`;
    stage.hidden = false;
    placeholder.hidden = true;
    updateButtons();
  });
  reader.addEventListener("error", () => showError(`Could not read ${file.name}.`));
  reader.readAsDataURL(file);
}

function labelsOf(text) {
  return text
    .split(/[;,]/)
    .map((label) => label.trim())
    .filter((label) => label !== "");
}

function inputMissing() {
  if (picked === null) return "Choose an image first.";
  const task = TASKS[taskSelect.value];
  if (task.field !== undefined && textInput.value.trim() === "") return `Fill in ${task.field.toLowerCase()}.`;
  return null;
}

function updateButtons() {
  runButton.disabled = running !== null || !serverReady || inputMissing() !== null;
  runButton.textContent = running === null ? "Run" : "Running…";
  runButton.setAttribute("aria-busy", String(running !== null));
  stopButton.disabled = running === null;
}

// --- the server ---------------------------------------------------------------------------------------------

async function checkHealth() {
  try {
    const res = await fetch("/health", { headers: authHeaders() });
    const body = await res.json().catch(() => ({}));
    if (res.ok && body.status === "ok") {
      serverReady = true;
      statusLine.textContent = `Model: ${body.model ?? "loaded"}`;
      updateButtons();
      return;
    }
    statusLine.textContent = res.status === 503 ? "Loading the model…" : `Server says: ${errorText(res, body)}`;
  } catch {
    statusLine.textContent = "Cannot reach the server; retrying…";
  }
  setTimeout(checkHealth, 1000);
}

function authHeaders() {
  const key = apiKeyInput.value.trim();
  return key === "" ? {} : { Authorization: `Bearer ${key}` };
}

async function post(path, body, signal) {
  const res = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...authHeaders() },
    body: JSON.stringify(body),
    signal,
  });
  if (!res.ok) {
    const errorBody = await res.json().catch(() => ({}));
    if (res.status === 401) apiKeyInput.closest("details").open = true;
    throw new Error(errorText(res, errorBody));
  }
  return res;
}

function errorText(res, body) {
  const error = body?.error;
  if (error?.message) return error.code ? `${error.message} (${error.code})` : error.message;
  return `HTTP ${res.status} ${res.statusText}`.trim();
}

/** Reads a text/event-stream response and calls onData with each `data:` payload parsed as JSON. */
async function readEvents(res, onData) {
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end = buffer.indexOf("\n");
    while (end >= 0) {
      const line = buffer.slice(0, end).replace(/\r$/, "");
      buffer = buffer.slice(end + 1);
      end = buffer.indexOf("\n");
      if (!line.startsWith("data:")) continue;
      const data = line.slice(5).trim();
      if (data === "[DONE]") {
        await reader.cancel();
        return;
      }
      const event = JSON.parse(data);
      if (event.error) throw new Error(event.error.message ?? String(event.error));
      onData(event);
    }
  }
}

// --- running a task -----------------------------------------------------------------------------------------

async function run() {
  const missing = inputMissing();
  if (missing !== null) return showError(missing);
  if (running !== null) return;
  clearResult();
  running = new AbortController();
  updateButtons();
  output.setAttribute("aria-busy", "true");
  const name = taskSelect.value;
  const task = TASKS[name];
  const started = performance.now();
  try {
    if (task.endpoint === undefined) await runChat(task.prompt(textInput.value.trim()), running.signal, started);
    else await runTask(task.endpoint, labelsOf(textInput.value), running.signal, started);
  } catch (error) {
    if (error.name === "AbortError") showNote("Stopped.");
    else showError(error.message);
  } finally {
    running = null;
    output.removeAttribute("aria-busy");
    updateButtons();
  }
}

async function runChat(prompt, signal, started) {
  const res = await post(
    "/v1/chat/completions",
    {
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: prompt },
            { type: "image_url", image_url: { url: picked.dataUrl } },
          ],
        },
      ],
      max_tokens: maxTokens(),
      stream: true,
      stream_options: { include_usage: true },
    },
    signal,
  );
  let firstToken = null;
  let timings = null;
  let usage = null;
  let finish = null;
  await readEvents(res, (chunk) => {
    const choice = chunk.choices?.[0];
    const delta = choice?.delta?.content;
    if (delta) {
      firstToken ??= performance.now() - started;
      // One text node per token: cheaper than rewriting the whole answer, and each piece stays observable.
      output.append(delta);
    }
    if (choice?.finish_reason) finish = choice.finish_reason;
    if (chunk.timings) timings = chunk.timings;
    if (chunk.usage) usage = chunk.usage;
  });
  output.dataset.done = "true";
  if (finish === "length") showNote("Stopped at the token limit.");
  showTimings(timings, { firstTokenMs: firstToken, roundTripMs: performance.now() - started }, usage);
}

async function runTask(endpoint, labels, signal, started) {
  const res = await post(endpoint, { image: picked.dataUrl, labels, max_tokens: maxTokens() }, signal);
  const result = await res.json();
  output.textContent = result.text ?? "";
  output.dataset.done = "true";
  const found = result.segmentations ?? result.detections ?? [];
  // One colour per instance, so that two masks of the same label stay apart.
  found.forEach((item, i) => {
    const colour = COLOURS[i % COLOURS.length];
    if (item.rle) drawMask(item, colour);
    drawBox(item, result.width, result.height, colour);
    addLegend(item, colour);
  });
  if (found.length === 0) showNote(`No ${labels.join(" or ")} found.`);
  showTimings(result.timings, { roundTripMs: performance.now() - started }, result.usage);
}

function maxTokens() {
  const n = Number.parseInt(maxTokensInput.value, 10);
  return Number.isFinite(n) && n > 0 ? n : 128;
}

// --- drawing ------------------------------------------------------------------------------------------------

function drawBox(item, width, height, colour) {
  const { x1, y1, x2, y2 } = item.box;
  const box = document.createElement("div");
  box.className = "box";
  box.dataset.testid = "box";
  box.dataset.label = item.label;
  box.dataset.score = String(item.score);
  Object.assign(box.dataset, { x1, y1, x2, y2 });
  // Percentages of the original image, so the boxes follow the picture when the page is resized.
  Object.assign(box.style, {
    left: `${(x1 / width) * 100}%`,
    top: `${(y1 / height) * 100}%`,
    width: `${((x2 - x1) / width) * 100}%`,
    height: `${((y2 - y1) / height) * 100}%`,
    borderColor: colour,
  });
  const tag = document.createElement("span");
  tag.className = "tag";
  tag.style.background = colour;
  tag.textContent = `${item.label}${formatScore(item.score)}`;
  box.append(tag);
  overlay.append(box);
}

/** Paints a COCO uncompressed RLE (column-major runs, zeros first) on a canvas the size of the image. */
function drawMask(item, colour) {
  const [height, width] = item.rle.size;
  const canvas = document.createElement("canvas");
  canvas.className = "mask";
  canvas.width = width;
  canvas.height = height;
  canvas.dataset.testid = "mask";
  canvas.dataset.label = item.label;
  canvas.dataset.area = String(item.area ?? "");
  canvas.setAttribute("aria-hidden", "true");
  const context = canvas.getContext("2d");
  const pixels = context.createImageData(width, height);
  const [r, g, b] = rgb(colour);
  let position = 0;
  item.rle.counts.forEach((run, k) => {
    if (k % 2 === 1) {
      for (let p = position; p < position + run; p++) {
        const x = Math.floor(p / height);
        const i = ((p % height) * width + x) * 4;
        pixels.data[i] = r;
        pixels.data[i + 1] = g;
        pixels.data[i + 2] = b;
        pixels.data[i + 3] = 255;
      }
    }
    position += run;
  });
  context.putImageData(pixels, 0, 0);
  overlay.append(canvas);
}

function rgb(hex) {
  const n = Number.parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

// The server leaves the score out when the model gave none.
function formatScore(score) {
  return typeof score === "number" ? ` ${score.toFixed(2)}` : "";
}

function addLegend(item, colour) {
  const li = document.createElement("li");
  li.dataset.testid = "legend-item";
  const swatch = document.createElement("span");
  swatch.className = "swatch";
  swatch.style.background = colour;
  const { x1, y1, x2, y2 } = item.box;
  const area = item.area === undefined ? "" : `, ${item.area} px`;
  li.append(swatch, `${item.label}${formatScore(item.score)} at ${x1},${y1}–${x2},${y2}${area}`);
  legend.append(li);
}

const TIMING_NAMES = [
  ["imageEncodeMs", "Image encode"],
  ["prefillMs", "Prefill"],
  ["decodeMs", "Decode"],
  ["totalMs", "Total"],
  ["firstTokenMs", "First token (browser)"],
  ["roundTripMs", "Round trip (browser)"],
];

function showTimings(server, browser, usage) {
  const all = { ...(server ?? {}), ...browser };
  for (const [key, name] of TIMING_NAMES) {
    const value = all[key];
    if (typeof value !== "number") continue;
    addTiming(name, `${value < 10 ? value.toFixed(1) : Math.round(value)} ms`, key);
  }
  if (typeof usage?.completion_tokens === "number") {
    addTiming("Tokens", `${usage.prompt_tokens ?? "?"} in, ${usage.completion_tokens} out`, "tokens");
  }
}

function addTiming(name, value, key) {
  const dt = document.createElement("dt");
  dt.textContent = name;
  const dd = document.createElement("dd");
  dd.textContent = value;
  dd.dataset.key = key;
  timingsList.append(dt, dd);
}

// --- messages -----------------------------------------------------------------------------------------------

function clearResult() {
  overlay.replaceChildren();
  legend.replaceChildren();
  timingsList.replaceChildren();
  output.textContent = "";
  delete output.dataset.done;
  for (const box of [errorBox, noteBox]) {
    box.hidden = true;
    box.textContent = "";
  }
}

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = false;
}

// A stop or an empty result is not a failure: said beside the output, not as an alert.
function showNote(message) {
  noteBox.textContent = message;
  noteBox.hidden = false;
}
