/* Sending the offline queue (queue.js), oldest first, each write with the Idempotency-Key it
 * got at "send": a retry after a lost answer, a reload mid-send, a second tab or the service
 * worker sending at the same time all get the first answer back (the server replays it), so
 * nothing is created twice. Photos go after their consult, through the resumable upload
 * (`upload`, uploader.js; the service worker has none, so it leaves photos to a page).
 *
 * A 401 stops everything and keeps the queue (the session expired: log in, then it goes);
 * no connection or a 5xx stops until the next try; any other refusal is kept on its item,
 * shown on the home page, and not sent again.
 */
import * as queue from "./queue.js";
import { Refused } from "../uploader.js";
import { t } from "../i18n.js";

export class LoginNeeded extends Error {}
class Later extends Error {}

const API = "/api/v1/consults/";
/* A write is a few KB: over 2G a second or two. A link that drops without telling (TCP
   waits) would otherwise hold the page at "Sending…" for minutes; given up, it is queued,
   and sent again later with its key (should the first copy arrive after all, the server
   replays its answer instead of creating a second). */
const TIMEOUT_MS = 30000;

/* The CSRF token of the session (pages store it; after a new login a page brings the new
   one). On a 403 we read it afresh from the home page once. */
async function freshCsrf() {
  const res = await fetch("/", { credentials: "same-origin", cache: "no-store" });
  const found = /name="csrf_token" value="([^"]+)"/.exec(await res.text());
  if (!found) throw new LoginNeeded();
  await queue.setMeta("csrf", found[1]);
  return found[1];
}

async function post(url, body, key, session) {
  for (let attempt = 0; ; attempt++) {
    const headers = { "Content-Type": "application/json", "X-CSRF-Token": session.csrf || "" };
    if (key) headers["Idempotency-Key"] = key;
    let res;
    try {
      const signal = AbortSignal.timeout ? AbortSignal.timeout(TIMEOUT_MS) : undefined;
      res = await fetch(url, { method: "POST", credentials: "same-origin", headers, body: JSON.stringify(body), signal });
    } catch (e) {
      throw new Later("no connection");
    }
    if (res.status === 401) throw new LoginNeeded();
    if (res.status === 403 && attempt === 0) { session.csrf = await freshCsrf(); continue; }
    if (res.status >= 500 || res.status === 408 || res.status === 429) throw new Later("the server answered " + res.status);
    let json = null;
    try { json = await res.json(); } catch (e) { /* not JSON */ }
    return { status: res.status, json };
  }
}

function refusal(res) {
  return (res.json && res.json.error && res.json.error.message) || "the server answered " + res.status;
}

/* One item, from wherever it stopped last time; true when it is all done. */
async function sendItem(item, session, upload) {
  if (!item.sent) {
    const res = await post(item.url, item.body, item.key, session);
    if (res.status !== 200 && res.status !== 201) { item.error = refusal(res); await queue.put(item); return false; }
    item.sent = true;
    if (item.kind === "consult") item.consultId = res.json.id;
    if (item.kind === "note") item.noteId = res.json.id;
    await queue.put(item);
  }
  if (item.sign && !item.signed) {
    /* Signing twice is a 409 "already signed": the first one went through. */
    const res = await post(API + item.consultId + "/notes/" + item.noteId + "/sign", {}, null, session);
    if (res.status !== 200 && res.status !== 409) { item.error = t("Saved as a draft, not signed: %(error)s", { error: refusal(res) }); await queue.put(item); return false; }
    item.signed = true;
    await queue.put(item);
  }
  for (const photo of item.photos || []) {
    if (photo.done) continue;
    if (!upload) throw new Later("photos are sent from a page");
    try {
      await upload(new File([photo.file], photo.name, { type: photo.file.type }),
        { consultId: item.consultId, csrf: session.csrf, key: photo.key, remember: false, maxFailures: 4 });
    } catch (e) {
      if (!(e instanceof Refused)) throw new Later(e.message);
      photo.error = e.message;
    }
    photo.done = true;
    await queue.put(item);
  }
  const failed = (item.photos || []).filter((p) => p.error);
  if (failed.length) {
    item.error = t("The request was sent; %(photos)s. Attach it on the consult page.", { photos: failed.map((p) => p.name + ": " + p.error).join("; ") });
    await queue.put(item);
    return false;
  }
  await queue.remove(item.key);
  return true;
}

async function run(upload) {
  const result = { sent: [], loginNeeded: false, stopped: null };
  const session = { csrf: await queue.getMeta("csrf") };
  const user = await queue.getMeta("user");
  const tried = new Set();
  for (;;) {
    const next = queue.sendable(await queue.all(), user).find((i) => !tried.has(i.key));
    if (!next) return result;
    tried.add(next.key);
    try {
      if (await sendItem(next, session, upload)) result.sent.push(next);
    } catch (e) {
      if (e instanceof LoginNeeded) result.loginNeeded = true;
      else result.stopped = e.message;
      return result;
    }
  }
}

let running = null;

/**
 * Send what can be sent; resolves with { sent: [items], loginNeeded, stopped }. One sender
 * at a time: in this page (a second call while one runs gets the same promise) and, where
 * the browser has Web Locks, across tabs and the service worker.
 */
export function flush(upload) {
  if (!running) {
    const go = () => run(upload);
    const locked = self.navigator && navigator.locks ? navigator.locks.request("telemed-offline-send", go) : go();
    running = locked.finally(() => { running = null; });
  }
  return running;
}
