/* Voice notes in the consult's thread: recorded with MediaRecorder as Opus at 12 kbit/s (about
 * 90 KB a minute: wideband speech, clear enough for a history or advice, and a minute sends in
 * about 7 s on a 128 kbit/s EDGE link), three minutes at most (the recorder stops itself), listened to before
 * sending, then sent through the resumable upload as a voice note: the server checks it is
 * Opus, reads its length from the file and makes it a message of the thread.
 *
 * Firefox records Ogg, Chromium WebM; both are Opus. Shown only where MediaRecorder and a
 * microphone exist; the thread works without it.
 */
import { GaveUp, Refused, upload } from "./uploader.js";
import { t } from "./i18n.js";

export const MAX_MS = 180000;
export const BITS_PER_SECOND = 12000;
const TYPES = [["audio/ogg;codecs=opus", "ogg"], ["audio/webm;codecs=opus", "webm"]];

export function recordingType() {
  if (!window.MediaRecorder || !MediaRecorder.isTypeSupported) return null;
  return TYPES.find(([type]) => MediaRecorder.isTypeSupported(type)) || null;
}

const clock = (ms) => Math.floor(ms / 60000) + ":" + String(Math.floor((ms % 60000) / 1000)).padStart(2, "0");

function enhance(box) {
  const type = recordingType();
  if (!type || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return;
  box.hidden = false;
  const [mimeType, extension] = type;
  const start = box.querySelector("[data-voice-start]");
  const stop = box.querySelector("[data-voice-stop]");
  const send = box.querySelector("[data-voice-send]");
  const discard = box.querySelector("[data-voice-discard]");
  const time = box.querySelector("[data-voice-time]");
  const preview = box.querySelector("audio");
  const status = box.querySelector("[data-voice-status]");
  const consultId = box.getAttribute("data-consult");
  const csrf = box.querySelector("input[name=csrf_token]").value;
  let recorder = null;
  let recording = null;
  let ticker = 0;
  let limit = 0;

  function say(text, isError) {
    status.textContent = text;
    status.className = isError ? "error" : "muted";
  }

  function reset() {
    recording = null;
    if (preview.src) URL.revokeObjectURL(preview.src);
    preview.removeAttribute("src");
    preview.hidden = true;
    send.disabled = discard.disabled = true;
    time.textContent = "0:00";
  }

  start.addEventListener("click", async () => {
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true } });
    } catch (e) {
      say(t("The microphone could not be used: %(error)s", { error: e.message }), true);
      return;
    }
    reset();
    const chunks = [];
    recorder = new MediaRecorder(stream, { mimeType, audioBitsPerSecond: BITS_PER_SECOND });
    recorder.ondataavailable = (e) => { if (e.data && e.data.size) chunks.push(e.data); };
    recorder.onstop = () => {
      clearInterval(ticker);
      clearTimeout(limit);
      stream.getTracks().forEach((t) => t.stop());
      recording = new Blob(chunks, { type: mimeType.split(";")[0] });
      preview.src = URL.createObjectURL(recording);
      preview.hidden = false;
      start.disabled = false;
      stop.disabled = true;
      send.disabled = discard.disabled = false;
      say(t("Recorded %(length)s, %(size)s KB to send. Listen, then send or discard.", { length: time.textContent, size: Math.round(recording.size / 1024) }));
    };
    const began = Date.now();
    recorder.start(1000);
    start.disabled = true;
    stop.disabled = false;
    say(t("Recording… it stops by itself at %(limit)s.", { limit: clock(MAX_MS) }));
    ticker = setInterval(() => { time.textContent = clock(Date.now() - began); }, 250);
    limit = setTimeout(() => { if (recorder.state === "recording") recorder.stop(); }, MAX_MS);
  });

  stop.addEventListener("click", () => { if (recorder && recorder.state === "recording") recorder.stop(); });
  discard.addEventListener("click", () => { reset(); say(""); });

  send.addEventListener("click", () => {
    if (!recording) return;
    const stamp = new Date().toISOString().replace(/[-:]/g, "").slice(0, 15);
    const file = new File([recording], "voice-note-" + stamp + "." + extension, { type: recording.type, lastModified: Date.now() });
    send.disabled = discard.disabled = start.disabled = true;
    upload(file, {
      consultId,
      csrf,
      fields: { voice_note: true },
      onProgress: (done, total) => say(t("Sending… %(done)s of %(total)s KB", { done: Math.round(done / 1024), total: Math.round(total / 1024) })),
      onRetry: (offset, ms) => say(t("Connection lost; retrying in %(seconds)s s…", { seconds: Math.round(ms / 1000) }))
    }).then(() => {
      say(t("Sent."));
      window.location.assign("/consults/" + consultId + "?voice=1#thread");
    }, (err) => {
      send.disabled = discard.disabled = start.disabled = false;
      if (err instanceof GaveUp) say(t("The connection keeps dropping. Press Send again to continue."), true);
      else say(err instanceof Refused ? err.message : t("Sending stopped; press Send to try again."), true);
    });
  });
}

const box = document.querySelector("[data-voice]");
if (box) enhance(box);
