/* The service worker, served at /sw.js (scope "/", telemed/web/offline.py): the app shell
 * (CSS, the JS modules, the home and request pages) opens offline, and Background Sync sends
 * the offline queue (offline/send.js) when the link is back.
 *
 * Pages: network first; only the home and request pages are kept, for when the network
 * fails. Nothing under /api/ and no consult page is ever cached: clinical data stays on the
 * server, apart from the queue the clinician wrote. Caches are named by VERSION; a new
 * version deletes the old ones when it takes over. Logout deletes them all (page.js, and the
 * logout response's Clear-Site-Data).
 */
import { flush } from "/static/offline/send.js";

const VERSION = "v3"; /* v2: the scripts' words (i18n.js); v3: versioned asset URLs */
const SHELL = "telemed-shell-" + VERSION;
const PAGES = "telemed-pages-" + VERSION;
/* Served as /static/…?v=<content hash> (telemed/web/assets.py rewrites these strings), the
   URLs the pages name: a release that changes one changes this worker, which the browser
   then installs. */
const ASSETS = [
  "/static/app.css", "/static/photo.js", "/static/uploader.js", "/static/offline/page.js",
  "/static/offline/queue.js", "/static/offline/send.js", "/static/offline/forms.js", "/static/i18n.js"
];
const ASSET_URLS = ASSETS.map((a) => new URL(a, self.location.origin).href);
const ASSET_PATHS = ASSET_URLS.map((a) => new URL(a).pathname);
const SHELL_PAGES = ["/", "/consults/new"];

/* A page is kept only when it is the page itself (not a redirect to the login page). */
function keepable(res) {
  return res.ok && !res.redirected && res.type === "basic";
}

async function keepPage(path) {
  try {
    const res = await fetch(path, { credentials: "same-origin" });
    if (keepable(res)) await (await caches.open(PAGES)).put(path, res);
  } catch (e) { /* offline or refused: kept at the next visit */ }
}

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL).then((c) => c.addAll(ASSETS))
    .then(() => Promise.all(SHELL_PAGES.map(keepPage))).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k !== SHELL && k !== PAGES).map((k) => caches.delete(k))))
    .then(() => caches.open(SHELL))
    .then((shell) => shell.keys().then((kept) => Promise.all(kept /* earlier releases' versions */
      .filter((r) => !ASSET_URLS.includes(r.url)).map((r) => shell.delete(r)))))
    .then(() => self.clients.claim()));
});

const OFFLINE = '<!doctype html><meta charset="utf-8"><meta name="viewport" content="width=device-width">' +
  '<link rel="stylesheet" href="/static/app.css"><main><h1>No connection · Ha ho khokahano</h1>' +
  '<p>This page is not kept on the device. <a href="/">Home</a> and <a href="/consults/new">Request a consult</a> open offline.</p>' +
  /* The worker has no page to know the reader's language from: both, Sesotho second. */
  '<p lang="st">Leqephe lena ha le bolokoe sesebelisoa sena. <a href="/">Lehae</a> le <a href="/consults/new">Kopa puisano</a> lia buleha ntle le marang-rang.</p></main>';

async function page(request, path) {
  try {
    const res = await fetch(request);
    if (SHELL_PAGES.includes(path) && keepable(res)) {
      const copy = res.clone();
      caches.open(PAGES).then((c) => c.put(path, copy));
    }
    return res;
  } catch (e) {
    const kept = SHELL_PAGES.includes(path) && (await caches.match(path, { cacheName: PAGES }));
    return kept || new Response(OFFLINE, { status: 503, headers: { "Content-Type": "text/html; charset=utf-8" } });
  }
}

/* Cache first: a versioned URL's content never changes. Offline, a page kept from an
   earlier release gets whichever version of the file is kept. */
async function asset(request) {
  const cache = await caches.open(SHELL);
  const kept = await cache.match(request);
  if (kept) return kept;
  try {
    const res = await fetch(request);
    if (res.ok) cache.put(request, res.clone());
    return res;
  } catch (e) {
    const other = await cache.match(request, { ignoreSearch: true });
    if (other) return other;
    throw e;
  }
}

self.addEventListener("fetch", (event) => {
  const { request } = event;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (request.mode === "navigate") {
    event.respondWith(page(request, url.search ? "" : url.pathname));
  } else if (url.pathname.startsWith("/static/") && ASSET_PATHS.includes(url.pathname)) {
    event.respondWith(asset(request));
  }
  /* Everything else (the API, attachments, media): the network only. */
});

/* Background Sync: an open page sends (it has the resumable upload for photos); with none
   open, the worker sends what it can. Failing makes the browser try again later. */
self.addEventListener("sync", (event) => {
  if (event.tag !== "telemed-send") return;
  event.waitUntil(self.clients.matchAll({ type: "window" }).then(async (open) => {
    if (open.length) { open.forEach((c) => c.postMessage("telemed-send")); return; }
    const result = await flush(null);
    if (result.stopped && result.stopped !== "photos are sent from a page") throw new Error(result.stopped);
  }));
});
