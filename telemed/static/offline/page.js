/* Offline-first, on every page of a logged-in user (base.html): registers the service worker
 * (sw.js: the app shell opens offline), remembers the session's CSRF token for the queue's
 * sender, sends the offline queue (queue.js) on load, when the link comes back (`online`),
 * when the service worker asks (Background Sync) and every 30 s while something waits; shows
 * the queue on the home page; on logout, empties the queue and the caches first.
 *
 * The sender (send.js) and the forms' part (forms.js) load only when needed.
 */
import * as queue from "./queue.js";
import { t } from "../i18n.js";

const me = document.querySelector("script[data-offline-user]");
const SHELL_PAGES = ["/", "/consults/new"]; /* as in sw.js */
const user = me && me.getAttribute("data-offline-user");
const RETRY_MS = 30000;
let timer = null;

/* A page from the service worker's cache may carry an old session's token: keep the token
   of a page that came over the network (the sender reads a fresh one after a 403 anyway). */
async function remember() {
  const csrf = document.querySelector("input[name=csrf_token]");
  if (navigator.onLine && csrf) await queue.setMeta("csrf", csrf.value);
  if (user) await queue.setMeta("user", user);
}

function loginPrompt(count) {
  let box = document.getElementById("offline-login");
  if (!box) {
    box = document.createElement("p");
    box.id = "offline-login";
    box.className = "alert";
    box.setAttribute("role", "alert");
    document.querySelector("main").prepend(box);
  }
  const back = encodeURIComponent(location.pathname + location.search);
  const link = document.createElement("a");
  link.href = "/login?next=" + back;
  link.textContent = t("Log in again");
  box.replaceChildren(t("Your session has expired."), " ", link, " ",
    t("to send what is waiting (%(count)s kept on this device).", { count }));
}

/* How many of this user's writes wait to be sent. */
async function waiting() {
  return queue.sendable(await queue.all(), user).length;
}

/** Send the queue; resolves with send.js's result (or null when nothing waits). */
export async function sendNow() {
  if (!(await waiting())) return null; /* the sender loads only when something waits */
  const { flush } = await import("./send.js");
  const { upload } = await import("../uploader.js");
  const result = await flush(upload);
  const left = await waiting();
  if (result.loginNeeded) loginPrompt(left);
  clearTimeout(timer);
  if (left && !result.loginNeeded) timer = setTimeout(sendNow, RETRY_MS);
  return result;
}

function describe(item) {
  const photos = (item.photos || []).length;
  const when = new Date(item.queued).toLocaleString([], { dateStyle: "short", timeStyle: "short" });
  return item.label + (photos ? " · " + t("photos: %(count)s", { count: photos }) : "") + " · " + t("queued %(when)s", { when });
}

/* The home page's panel (_offline_queue.html): count, items, "send now". */
async function showQueue(panel) {
  const items = await queue.all();
  panel.hidden = !items.length;
  panel.querySelector("[data-offline-count]").textContent = t("Waiting to be sent: %(count)s", { count: items.length });
  const list = panel.querySelector("ul");
  list.textContent = "";
  for (const item of items) {
    const li = document.createElement("li");
    li.textContent = describe(item);
    if (String(item.user) !== String(user)) li.textContent += " · " + t("queued by another user: sent when they log in");
    if (item.error) {
      const why = document.createElement("strong");
      why.className = "error";
      why.textContent = " " + t("Not sent: %(error)s", { error: item.error }) + " ";
      const drop = document.createElement("button");
      drop.type = "button";
      drop.className = "secondary";
      drop.textContent = t("Discard");
      drop.addEventListener("click", () => queue.remove(item.key));
      li.append(why, drop);
    }
    list.append(li);
  }
}

function hookLogout() {
  const form = document.querySelector("form[action='/logout']");
  if (!form) return;
  form.addEventListener("submit", async (event) => {
    if (form.dataset.cleared) return;
    event.preventDefault();
    await Promise.all([
      queue.clear().catch(() => {}),
      self.caches ? caches.keys().then((keys) => Promise.all(keys.map((k) => caches.delete(k)))).catch(() => {}) : null
    ]);
    form.dataset.cleared = "1";
    form.submit();
  });
}

async function start() {
  hookLogout();
  if ("serviceWorker" in navigator) {
    /* After the page itself: the shell's download never competes with it on a thin link.
       Only from the pages the shell is for (sw.js's SHELL_PAGES: the home page, where every
       login lands, and the request form): installing it costs ~25 KB, which a phone opening
       a call or the dashboard for the first time should not pay on 2G. */
    const register = () => navigator.serviceWorker.register("/sw.js", { type: "module" }).catch(() => { /* no module workers: no offline shell */ });
    if (SHELL_PAGES.includes(location.pathname)) {
      if (document.readyState === "complete") register(); else window.addEventListener("load", register);
    }
    navigator.serviceWorker.addEventListener("message", (e) => { if (e.data === "telemed-send") sendNow(); });
  }
  const panel = document.querySelector("[data-offline-queue]");
  if (panel) {
    const refresh = () => showQueue(panel);
    queue.onChange(refresh);
    panel.querySelector("[data-offline-send]").addEventListener("click", sendNow);
    refresh();
  }
  if (document.querySelector("form[data-offline]")) import("./forms.js");
  window.addEventListener("online", sendNow);
  await remember();
  sendNow();
}

if (window.indexedDB) start();
