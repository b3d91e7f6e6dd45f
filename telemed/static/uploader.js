/* The resumable upload of one file to a consult, for the consult page's form (upload.js)
 * and the call's photos (call/photos.js), by the protocol of telemed/attachments/endpoints.py:
 * POST .../uploads, PATCH 256 KB chunks; after a drop, back off, ask HEAD for the server's
 * offset and go on from there. With `remember` the upload's URL stays in localStorage, so the
 * same file chosen again after a reload resumes instead of starting from zero.
 */
import { t } from "./i18n.js";

export const CHUNK = 256 * 1024;
const CHUNK_TIMEOUT_MS = 120000; /* 256 KB at 2G speeds can take a minute */

/** The server's last word on the file (refused, failed, expired): retrying cannot help. */
export class Refused extends Error {}

/** Too many drops in a row; the server keeps `offset` bytes for the next try. */
export class GaveUp extends Error {
  constructor(offset) {
    super("the connection keeps dropping; try again");
    this.offset = offset;
  }
}

/* XHR rather than fetch: progress within a chunk, and a timeout. */
function request(method, url, headers, body, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    xhr.timeout = CHUNK_TIMEOUT_MS;
    Object.keys(headers).forEach((k) => xhr.setRequestHeader(k, headers[k]));
    if (onProgress && xhr.upload) xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onload = () => {
      let json = null;
      try { json = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
      resolve({ status: xhr.status, header: (h) => xhr.getResponseHeader(h), json });
    };
    xhr.onerror = xhr.ontimeout = xhr.onabort = () => reject(new Error("no connection"));
    xhr.send(body === undefined ? null : body);
  });
}

/* Wait, but wake up when the browser says the network is back. */
function pause(ms) {
  return new Promise((resolve) => {
    const done = () => { clearTimeout(timer); window.removeEventListener("online", done); resolve(); };
    const timer = setTimeout(done, ms);
    window.addEventListener("online", done);
  });
}

/** The server's reason for a refusal, or its status. */
export function reason(res) {
  return (res.json && res.json.error && res.json.error.message) || "the server answered " + res.status;
}

/* 4xx but a timeout or a rate limit: the same request would be refused again. */
function final(status) {
  return status >= 400 && status < 500 && status !== 408 && status !== 429;
}

const store = {
  get(key) { try { return key && localStorage.getItem(key); } catch (e) { return null; } },
  set(key, url) { try { if (key) localStorage.setItem(key, url); } catch (e) { /* private mode */ } },
  forget(key) { try { if (key) localStorage.removeItem(key); } catch (e) { /* private mode */ } }
};

/* {offset} to go on from, {attachment} if it finished (our last answer was lost), {failure}
   if it was refused, null if it is gone; rejects when the server cannot be reached. */
function serverState(url, csrf) {
  return request("HEAD", url, { "X-CSRF-Token": csrf }).then((res) => {
    if (res.status >= 500 || res.status === 0) throw new Error("the server answered " + res.status);
    if (res.status !== 200) return null;
    if (res.header("Upload-State") === "open") return { offset: parseInt(res.header("Upload-Offset"), 10) };
    return request("GET", url, { "X-CSRF-Token": csrf }).then((got) => {
      if (got.status !== 200) return null;
      if (got.json.attachment) return { attachment: got.json.attachment };
      return got.json.failure ? { failure: got.json.failure } : null;
    });
  });
}

/** A random Idempotency-Key (crypto.randomUUID needs a secure context; this does not). */
export function newKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/* POST .../uploads with an Idempotency-Key: if the answer is lost on the way back, the same
   request sent again (here, or after a reload with `remember`) returns the same upload
   instead of starting a second one. */
async function create(file, o, idemKey) {
  const body = JSON.stringify(Object.assign({
    filename: file.name, length: file.size, media_type: file.type || "application/octet-stream"
  }, o.fields));
  let failures = 0;
  for (;;) {
    const res = await request("POST", "/api/v1/consults/" + o.consultId + "/uploads",
      { "Content-Type": "application/json", "X-CSRF-Token": o.csrf, "Idempotency-Key": idemKey }, body).catch(() => null);
    if (res && res.status === 201) return res.json.url;
    if (res && final(res.status)) throw new Refused(reason(res));
    if (++failures >= 4) throw new Error(res ? reason(res) : "no connection");
    await pause(1000 * Math.pow(2, failures));
  }
}

/**
 * Resolves with the attachment made of `file`. options: consultId, csrf, fields (more for the
 * POST, e.g. message_id), remember, key (the Idempotency-Key of the POST, e.g. one the offline
 * queue stored, so that a second try continues the same upload), maxFailures (drops in a row before GaveUp; 25 is about 10
 * minutes), onProgress(done, total), onRetry(offset, ms). Rejects with Refused, GaveUp, or an
 * Error when it could not start.
 */
export async function upload(file, options) {
  const o = Object.assign({ fields: {}, remember: false, maxFailures: 25, onProgress() {}, onRetry() {} }, options);
  const key = o.remember ? "telemed-upload:" + o.consultId + ":" + file.name + ":" + file.size + ":" + file.lastModified : null;
  let url = store.get(key);
  const known = url ? await serverState(url, o.csrf).catch(() => null) : null;
  if (known && known.attachment) { store.forget(key); return known.attachment; }
  let offset = known && known.offset !== undefined ? known.offset : null;
  if (offset === null) {
    const idemKey = o.key || store.get(key && key + ":key") || newKey();
    store.set(key && key + ":key", idemKey);
    url = await create(file, o, idemKey);
    store.set(key, url);
    store.forget(key && key + ":key");
    offset = 0;
  }
  let failures = 0;
  for (;;) {
    o.onProgress(offset, file.size);
    const start = offset;
    const headers = { "Content-Type": "application/offset+octet-stream", "Upload-Offset": String(start), "X-CSRF-Token": o.csrf };
    const res = await request("PATCH", url, headers, file.slice(start, Math.min(start + CHUNK, file.size)),
      (loaded) => o.onProgress(start + loaded, file.size)).catch(() => null);
    if (res && res.status === 200) {
      if (res.json.state === "complete") { store.forget(key); return res.json.attachment; }
      offset = res.json.offset;
      failures = 0;
      continue;
    }
    if (res && res.status !== 409 && final(res.status)) { store.forget(key); throw new Refused(reason(res)); }
    /* 409: not where we thought, ask at once; a drop or a 5xx: back off first. */
    let wait = !res || res.status !== 409;
    for (;;) {
      if (wait) {
        if (++failures >= o.maxFailures) throw new GaveUp(offset);
        const ms = Math.min(30000, 1000 * Math.pow(2, failures - 1)) * (0.75 + Math.random() / 2);
        o.onRetry(offset, ms);
        await pause(ms);
      }
      let state;
      try { state = await serverState(url, o.csrf); } catch (e) { wait = true; continue; }
      if (state === null) { store.forget(key); throw new Refused(t("The upload can no longer be continued; please start again.")); }
      if (state.failure) { store.forget(key); throw new Refused(state.failure); }
      if (state.attachment) { store.forget(key); return state.attachment; }
      offset = state.offset;
      break;
    }
  }
}
