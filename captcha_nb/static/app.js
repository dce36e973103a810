// captcha_nb page: talks to /predict, /solve, /preview, /health and /info. Everything shown goes through textContent.
"use strict";
const $ = (id) => document.getElementById(id);
let current = null;           // the Blob to read
let loaded = {};              // endpoint -> model metadata, from /info

function headers() {
  const k = $("key").value;
  return k ? { "X-API-Key": k } : {};
}

function clearOutput() {
  $("error").textContent = ""; $("answer").textContent = ""; delete $("answer").dataset.text; delete $("answer").dataset.unsure; $("confidence").textContent = "";
  $("bars").replaceChildren(); $("preview").hidden = true; $("preview-cap").textContent = "";
}

function showError(msg) { clearOutput(); $("error").textContent = msg; }

function setImage(blob, name) {
  current = blob;            // the server decides what is an image and says why when it is not
  clearOutput();
  const img = $("original");
  img.src = URL.createObjectURL(blob); img.hidden = false;
  $("original-cap").textContent = (name || "pasted image") + " · " + Math.round(blob.size / 1024 * 10) / 10 + " KB";
  $("read").disabled = false;
  read();
}

async function errorText(r) {
  try { const j = await r.json(); return (j.detail || j.error || r.statusText); }
  catch (e) { return r.status + " " + r.statusText; }
}

function bar(label, value) {
  const l = document.createElement("span"); l.textContent = label;
  const track = document.createElement("span");
  const b = document.createElement("div"); b.className = "bar"; b.style.width = Math.max(1, value * 100) + "%";
  track.appendChild(b);
  const n = document.createElement("span"); n.className = "num"; n.textContent = (value * 100).toFixed(1) + "%";
  $("bars").append(l, track, n);
}

async function read() {
  if (!current) return;
  const endpoint = document.querySelector("input[name=mode]:checked").value;
  const hints = endpoint === "/solve" ? [["alphabet", $("hint-alphabet").value.trim()], ["length", $("hint-length").value.trim()]] : [];
  const minPct = $("min-confidence").value.trim();
  if (minPct !== "") hints.push(["min_confidence", String(Math.min(100, Math.max(0, Number(minPct))) / 100)]);
  const form = (withHints) => {
    const f = new FormData(); f.append("file", current, "upload");
    if (withHints) hints.forEach(([k, v]) => { if (v) f.append(k, v); });
    return f;
  };
  $("read").disabled = true; $("error").textContent = ""; $("answer").textContent = "…"; delete $("answer").dataset.text;
  try {
    const [r, p] = await Promise.all([
      fetch(endpoint, { method: "POST", body: form(true), headers: headers() }),
      fetch("/preview?endpoint=" + encodeURIComponent(endpoint), { method: "POST", body: form(false), headers: headers() }),
    ]);
    if (!r.ok) { showError("Rejected (" + r.status + "): " + await errorText(r)); return; }
    const a = await r.json();
    const text = a.text !== undefined ? a.text : a.label;
    $("answer").textContent = text || "(nothing read)";
    $("answer").dataset.text = text;
    $("confidence").textContent = "confidence " + (a.confidence * 100).toFixed(1) + "%" +
      (a.unsure ? " · unsure: below your " + minPct + " % threshold (best guess shown; better fetch a new CAPTCHA)" : "");
    if (a.unsure) $("answer").dataset.unsure = "true"; else delete $("answer").dataset.unsure;
    $("bars").replaceChildren();
    if (a.probabilities) {
      Object.entries(a.probabilities).sort((x, y) => y[1] - x[1]).slice(0, 5).forEach(([c, v]) => bar(c, v));
    } else if (a.characters) {
      a.characters.forEach((c) => bar(c.char, c.confidence));
    }
    if (p.ok) {
      const blob = await p.blob();
      $("preview").src = URL.createObjectURL(blob); $("preview").hidden = false;
      $("preview-cap").textContent = "as the model sees it (" + (p.headers.get("x-input-size") || "") + ", grey)";
    }
  } catch (e) {
    showError("Could not reach the server: " + e.message);
  } finally {
    $("read").disabled = false;
  }
}

async function refreshServer() {
  try {
    const h = await fetch("/health");
    $("health").textContent = h.ok ? "ok" : "not ready (" + h.status + ")";
    $("health").className = h.ok ? "status-ok" : "status-bad";
  } catch (e) { $("health").textContent = "unreachable"; $("health").className = "status-bad"; }
  try {
    const r = await fetch("/info", { headers: headers() });
    if (!r.ok) { $("info").replaceChildren(); const dt = document.createElement("dt"); dt.textContent = "info";
      const dd = document.createElement("dd"); dd.textContent = await errorText(r); $("info").append(dt, dd); return; }
    const info = (await r.json()).model || {};
    loaded = info.models || {};
    $("info").replaceChildren();
    for (const [ep, m] of Object.entries(loaded)) {
      const dt = document.createElement("dt"); dt.textContent = ep;
      const dd = document.createElement("dd");
      const lens = m.min_len && m.task === "captcha" ? " · " + (m.min_len === m.max_len ? m.min_len : m.min_len + "–" + m.max_len) + " characters" : "";
      dd.textContent = m.task + " model · alphabet " + m.alphabet + lens + " · input " + m.input_width + "×" + m.input_height +
        " · " + String(m.file || "").split("/").pop();
      $("info").append(dt, dd);
    }
    for (const [id, ep] of [["mode-char", "/predict"], ["mode-captcha", "/solve"]]) {
      const on = ep in loaded; $(id).disabled = !on;
      $(id).parentElement.title = on ? "" : "this server has no model for " + ep;
    }
    const checked = document.querySelector("input[name=mode]:checked");
    if (checked.disabled) { const other = document.querySelector("input[name=mode]:not(:disabled)"); if (other) other.checked = true; }
    showHints();
  } catch (e) { /* health shows the problem */ }
}

$("file").addEventListener("change", (e) => { const f = e.target.files[0]; if (f) setImage(f, f.name); });
$("read").addEventListener("click", read);
function showHints() { $("hints").hidden = document.querySelector("input[name=mode]:checked").value !== "/solve"; }
document.querySelectorAll("input[name=mode]").forEach((r) => r.addEventListener("change", () => { showHints(); read(); }));
["hint-alphabet", "hint-length", "min-confidence"].forEach((id) => $(id).addEventListener("change", read));
const drop = $("drop");
drop.addEventListener("click", () => $("file").click());
drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); $("file").click(); } });
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault(); drop.classList.remove("over");
  const f = e.dataTransfer.files[0]; if (f) setImage(f, f.name);
});
document.addEventListener("paste", (e) => {
  for (const item of e.clipboardData.items) {
    if (item.kind === "file") { setImage(item.getAsFile(), "pasted image"); return; }
  }
});
$("key").addEventListener("change", refreshServer);
document.querySelectorAll("a[data-auth]").forEach((a) => a.addEventListener("click", async (e) => {
  if (!$("key").value) return;            // no key: a plain link works
  e.preventDefault();
  const r = await fetch(a.getAttribute("href"), { headers: headers() });
  const blob = await r.blob();
  window.open(URL.createObjectURL(blob), "_blank", "noopener");
}));
refreshServer();
