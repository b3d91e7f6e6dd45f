/* Resumable uploads for the attachments form (templates/_attachments.html), through the
 * shared uploader (uploader.js): 256 KB chunks that carry on from the server's offset after a
 * drop, and resume after a reload when the same file is chosen again. Photos are scaled down
 * first (photo.js) unless "send full quality" is ticked; the bytes to send are shown.
 *
 * Without this script (no JavaScript, or a browser without ES modules) the form posts the
 * whole file in one request, which the server accepts too. No framework, no inline JS.
 */
import { GaveUp, Refused, upload } from "./uploader.js";
import { prepare, showBytes } from "./photo.js";
import { t } from "./i18n.js";
import "./voice.js"; /* the thread's voice notes: the consult page's one entry loads them */

const kb = (n) => Math.round(n / 1024);

function enhance(form) {
  const input = form.querySelector("input[type=file]");
  const button = form.querySelector("button[type=submit]");
  const status = form.querySelector(".upload-status");
  const bar = form.querySelector("progress");
  const consultId = form.getAttribute("data-consult");
  const maxBytes = parseInt(form.getAttribute("data-max-bytes"), 10);
  const full = form.querySelector("input[data-full-quality]");
  const bytes = form.querySelector("[data-photo-bytes]");
  if (full) full.closest("[data-photo-options]").hidden = false;
  if (bytes) showBytes(input, full, bytes);

  function show(text, isError) {
    status.hidden = false;
    status.textContent = text;
    status.className = "upload-status " + (isError ? "error" : "muted");
  }

  function progress(done, total) {
    bar.hidden = false;
    bar.value = total ? Math.floor((done / total) * 100) : 0;
    show(t("Uploading… %(done)s of %(total)s KB", { done: kb(done), total: kb(total) }));
  }

  form.addEventListener("submit", async (event) => {
    const chosen = input.files && input.files[0];
    if (!chosen) return; /* the browser's "required" message */
    event.preventDefault();
    button.disabled = true;
    const file = (await prepare([chosen], full))[0];
    button.disabled = false;
    if (file.size > maxBytes) {
      show(t("The file is %(size)s MB; the limit is %(limit)s.", { size: (file.size / 1048576).toFixed(1), limit: form.getAttribute("data-max-size") }), true);
      return;
    }
    button.disabled = true;
    upload(file, {
      consultId,
      csrf: form.querySelector("input[name=csrf_token]").value,
      remember: true,
      onProgress: progress,
      onRetry: (offset, ms) => show(t("Connection lost at %(done)s KB; retrying in %(seconds)s s…", { done: kb(offset), seconds: Math.round(ms / 1000) }))
    }).then((attachment) => {
      bar.value = 100;
      show(t("Uploaded. Reloading…"));
      window.location.assign("/consults/" + consultId + "?attached=" + attachment.id + "#attachment-" + attachment.id);
    }, (err) => {
      button.disabled = false;
      if (err instanceof GaveUp) show(t("The connection keeps dropping. Press Upload again to continue from %(done)s KB.", { done: kb(err.offset) }), true);
      else show(err instanceof Refused ? err.message : t("The upload stopped; press Upload to try again."), true);
    });
  });
}

const form = document.querySelector("form[data-upload]");
if (form && window.Blob && Blob.prototype.slice) enhance(form);
