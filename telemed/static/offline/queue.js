/* The offline queue: writes "sent" while the link is down, kept in IndexedDB until the
 * server has them. Used by the pages (page.js, forms.js) and the service worker (sw.js), so
 * it touches neither window nor document.
 *
 * An item: { key (its Idempotency-Key, made at "send"), user (who queued it), kind
 * ("consult" | "message" | "note"), url, body (the JSON to POST), label (what the home page
 * lists), photos ([{ key, file: Blob, name, done }]), then what the sender learnt: consultId,
 * noteId, error (the server's refusal) }. Photos are Blobs, already scaled by photo.js.
 */
const DB = "telemed-offline";
const ITEMS = "items";
const META = "meta";
let opened = null;

function open() {
  if (!opened) {
    opened = new Promise((resolve, reject) => {
      const req = indexedDB.open(DB, 1);
      req.onupgradeneeded = () => {
        req.result.createObjectStore(ITEMS, { keyPath: "key" });
        req.result.createObjectStore(META);
      };
      req.onsuccess = () => {
        req.result.onversionchange = () => { req.result.close(); opened = null; };
        resolve(req.result);
      };
      req.onerror = () => { opened = null; reject(req.error); };
      req.onblocked = () => { opened = null; reject(new Error("offline queue blocked")); };
    });
  }
  return opened;
}

async function run(store, mode, work) {
  const db = await open();
  return new Promise((resolve, reject) => {
    const tx = db.transaction(store, mode);
    const req = work(tx.objectStore(store));
    tx.oncomplete = () => resolve(req && req.result);
    tx.onerror = tx.onabort = () => reject(tx.error);
  });
}

/** Tell the other pages (and this one) that the queue changed. */
function changed() {
  if (typeof BroadcastChannel !== "function") return;
  const channel = new BroadcastChannel(DB);
  channel.postMessage("changed");
  channel.close();
}

export function onChange(listener) {
  if (typeof BroadcastChannel === "function") new BroadcastChannel(DB).onmessage = listener;
}

/** A new Idempotency-Key (crypto.randomUUID needs a secure context; the fallback does not). */
export function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

export const put = (item) => run(ITEMS, "readwrite", (s) => s.put(item)).then(changed);
export const remove = (key) => run(ITEMS, "readwrite", (s) => s.delete(key)).then(changed);
/** Oldest first: a key is a random UUID, so order by when it was queued. */
export const all = () => run(ITEMS, "readonly", (s) => s.getAll()).then((items) => items.sort((a, b) => a.queued - b.queued));
export const getMeta = (name) => run(META, "readonly", (s) => s.get(name));
export const setMeta = (name, value) => run(META, "readwrite", (s) => s.put(value, name));

/** The items `user` can send now (not refused, not another user's). */
export const sendable = (items, user) => items.filter((i) => !i.error && String(i.user) === String(user));

/** Logout: the queue and what we know of the session go. */
export const clear = () => Promise.all([run(ITEMS, "readwrite", (s) => s.clear()), run(META, "readwrite", (s) => s.clear())]).then(changed);
