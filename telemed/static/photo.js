/* Light photos for thin links: a phone photo (4000 px, 3-6 MB) is scaled in the browser and
 * re-encoded as JPEG before the resumable upload sends it. A "send full quality" box keeps
 * the original. The bytes to be sent are shown before anything is sent.
 *
 * Why these settings: 1280 px on the longest side (1.2 megapixels) at quality 0.7 is well
 * above what store-and-forward teledermatology asks of a photo (800 x 600) and keeps a rash's
 * edge or a wound's slough legible when zoomed. A photo with fine detail everywhere (grass,
 * gravel, a patterned cloth; the 2G lab's test photo) is 250 KB so, a quarter of a minute
 * on a 128 kbit/s link: such a photo steps down (LADDER) until it fits
 * BUDGET, never below 1024 px at 0.6. Two photos of 160 KB and what comes with them (the
 * pages, the previews, TCP/IP: about 130 KB) keep a request with two photos under 500 KB on
 * the wire (docs/PERFORMANCE.md, "Thin link"). The clinician who needs every pixel ticks
 * "full quality".
 *
 * Used by the consult page's attachments form (upload.js), the offline queue
 * (offline/forms.js) and the consult request form (this module, on its own). No framework;
 * without JavaScript the forms still work.
 */
import { upload } from "./uploader.js";
import { t } from "./i18n.js";

export const MAX_SIDE = 1280;
export const QUALITY = 0.7;
export const BUDGET = 160 * 1024;
/* Tried in order until a photo fits BUDGET; the last is the floor of legibility. */
export const LADDER = [[MAX_SIDE, QUALITY], [MAX_SIDE, 0.6], [1024, 0.7], [1024, 0.6]];
const SCALABLE = /^image\/(jpeg|png|webp)$/;

export function kb(bytes) {
  return bytes < 1024 ? bytes + " B" : bytes < 1048576 ? Math.round(bytes / 1024) + " KB" : (bytes / 1048576).toFixed(1) + " MB";
}

function jpegName(name) {
  const stem = name.replace(/\.[^.]*$/, "") || "photo";
  return stem + ".jpg";
}

function encode(bitmap, maxSide, quality) {
  const scale = Math.min(1, maxSide / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(bitmap.width * scale);
  canvas.height = Math.round(bitmap.height * scale);
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff"; /* a transparent PNG over white, as the server would */
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", quality));
}

/**
 * The file to send: `file` scaled and re-encoded as JPEG by the first step of `ladder` that
 * fits `budget` bytes (or the last step), or `file` itself when it is not a photo the
 * browser can decode (HEIC, PDF, audio), or when scaling would not make it smaller.
 */
export async function lighten(file, ladder = LADDER, budget = BUDGET) {
  if (!SCALABLE.test(file.type) || !window.createImageBitmap) return file;
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch (e) {
    return file; /* not decodable here: the server checks and keeps it as sent */
  }
  let blob = null;
  try {
    for (const [maxSide, quality] of ladder) {
      blob = await encode(bitmap, maxSide, quality);
      if (!blob || blob.size <= budget) break;
    }
  } finally {
    if (bitmap.close) bitmap.close();
  }
  if (!blob || blob.size >= file.size) return file;
  return new File([blob], jpegName(file.name), { type: "image/jpeg", lastModified: file.lastModified });
}

/* The size shown and the upload that follows use one encoding (decoding a 12-megapixel
   photo takes a phone a second or more). */
const lightened = new WeakMap();

function lightenOnce(file) {
  if (!lightened.has(file)) lightened.set(file, lighten(file));
  return lightened.get(file);
}

/** The files to send for `input`: lightened unless `full` is checked. */
export function prepare(files, full) {
  return Promise.all(Array.from(files).map((f) => (full && full.checked ? f : lightenOnce(f))));
}

/**
 * Show, next to a file input, how many bytes will go over the link: "2 photos: 5.1 MB
 * taken, 412 KB to send". Recomputed when the choice or the full-quality box changes.
 */
export function showBytes(input, full, output) {
  let shown = 0;
  async function update() {
    const files = Array.from(input.files || []);
    const turn = ++shown;
    if (!files.length) { output.textContent = ""; output.removeAttribute("data-bytes"); return; }
    output.textContent = t("Working out the size…");
    const ready = await prepare(files, full);
    if (turn !== shown) return; /* the choice changed meanwhile */
    const taken = files.reduce((n, f) => n + f.size, 0);
    const sent = ready.reduce((n, f) => n + f.size, 0);
    output.setAttribute("data-bytes", String(sent));
    const sizes = { count: files.length, taken: kb(taken), sent: kb(sent) };
    output.textContent = sent === taken ? t("Files: %(count)s, %(sent)s to send", sizes)
      : t("Files: %(count)s, %(taken)s taken, %(sent)s to send", sizes);
  }
  input.addEventListener("change", update);
  if (full) full.addEventListener("change", update);
  return update;
}

/* The consult request form: photos chosen with the request are sent after it, to the
   consult it created, through the resumable upload. */
function enhanceRequestForm(form) {
  form.querySelector("[data-request-photo-block]").hidden = false;
  form.querySelector("[data-full-quality-choice]").hidden = false; /* scaling needs the script */
  const input = form.querySelector("input[data-photos]");
  const full = form.querySelector("input[data-full-quality]");
  const output = form.querySelector("[data-photo-bytes]");
  const status = form.querySelector("[data-photo-status]");
  showBytes(input, full, output);
  if (form.hasAttribute("data-offline")) return; /* sent through the offline queue (offline/forms.js) */
  form.addEventListener("submit", async (event) => {
    if (!input.files || !input.files.length) return; /* nothing to add: the plain form */
    event.preventDefault();
    const data = new FormData(form, event.submitter);
    data.delete(input.name);
    status.hidden = false;
    status.textContent = t("Sending the request…");
    let res;
    try {
      /* getAttribute: the form's buttons are named "action", which shadows form.action */
      res = await fetch(form.getAttribute("action"), { method: "POST", body: new URLSearchParams(data), credentials: "same-origin" });
    } catch (e) {
      status.textContent = t("The request could not be sent: no connection. Try again.");
      return;
    }
    const made = res.redirected && /^\/consults\/(\d+)$/.exec(new URL(res.url).pathname);
    if (!made) {
      if (res.redirected) { window.location.assign(res.url); return; } /* logged out */
      /* Refused: the answer is the form again, saying why; show it as the browser would. */
      const html = await res.text();
      document.open();
      document.write(html);
      document.close();
      return;
    }
    const consultId = made[1];
    const csrf = form.querySelector("input[name=csrf_token]").value;
    const files = await prepare(input.files, full);
    for (let i = 0; i < files.length; i++) {
      status.textContent = t("Request sent. Photo %(number)s of %(count)s…", { number: i + 1, count: files.length });
      try {
        await upload(files[i], { consultId, csrf, remember: false,
          onProgress: (done, total) => { status.textContent = t("Request sent. Photo %(number)s of %(count)s: %(done)s of %(total)s", { number: i + 1, count: files.length, done: kb(done), total: kb(total) }); } });
      } catch (e) {
        window.location.assign("/consults/" + consultId + "?photo_failed=1#attachments");
        return;
      }
    }
    window.location.assign(res.url);
  });
}

const requestForm = document.querySelector("form[data-request-photos]");
if (requestForm && window.fetch && window.FormData) enhanceRequestForm(requestForm);
