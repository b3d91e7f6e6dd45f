/* Chat and shared photos in the call: what comes over the data channel, what this page sends
 * (each message also POSTed to the consult's thread, which keeps it whatever the channel
 * does), and while no channel is open, what reached the thread meanwhile (GET .../call/feed).
 * It remembers what the channel brought, so that the feed does not show it twice.
 */
import { t } from "../i18n.js";
export class Chat {
  /* me: {id, name}; log: the <ol>; since: {message, attachment} (the last ids the page
     showed); hooks: broadcast(msg), status(text), mayPoll(), record (false: the channel
     only, not the thread: a call guest) */
  constructor(api, request, me, log, since, hooks) {
    this.api = api;
    this.request = request;
    this.me = me;
    this.log = log;
    this.hooks = hooks;
    this.entries = []; /* what was shown, for stats() */
    this.seenChat = {};
    this.seenAttachments = {};
    this.photoMessages = {}; /* thread messages that announce a photo: the photo shows instead */
    this.lastMessage = since.message;
    this.lastAttachment = since.attachment;
    this.polling = false;
  }

  add(name, text, mine) {
    this.entries.push({ name, text, mine });
    const li = document.createElement("li");
    li.textContent = name + ": " + text;
    this.log.appendChild(li);
  }

  /* The preview (at most 100 KB) from the app, with this page's own cookie: access as usual. */
  showPhoto(name, id, filename) {
    this.entries.push({ name, photo: id, mine: name === this.me.name });
    const li = document.createElement("li"), a = document.createElement("a"), img = document.createElement("img");
    li.appendChild(document.createTextNode(name + " shared a photo: "));
    a.href = "/attachments/" + id + "/original";
    a.title = t("Download the original");
    img.src = "/api/v1/attachments/" + id + "/preview";
    img.alt = filename;
    img.className = "shared-photo";
    img.style.display = "block";
    img.style.maxWidth = "min(100%, 320px)";
    a.appendChild(img);
    li.appendChild(a);
    this.log.appendChild(li);
  }

  /** A message from the data channel. */
  receive(data) {
    let m;
    try { m = JSON.parse(data); } catch (err) { return; }
    const name = String(m.name || "someone");
    if (m.type === "photo") {
      const id = parseInt(m.attachment, 10);
      if (m.message) this.photoMessages[m.message] = true;
      if (id > 0 && !this.seenAttachments[id]) {
        this.seenAttachments[id] = true;
        this.showPhoto(name, id, String(m.filename || "photo"));
      }
    } else if (m.type === "end") {
      this.hooks.status(t("%(name)s ended the consult. You can leave the call.", { name }));
    } else if (typeof m.text === "string") {
      const key = name + "\n" + m.text;
      this.seenChat[key] = (this.seenChat[key] || 0) + 1;
      this.add(name, m.text, false);
    }
  }

  send(text) {
    this.add(this.me.name, text, true);
    this.hooks.broadcast({ type: "chat", name: this.me.name, text });
    /* The thread keeps it, whether or not the data channel carried it. */
    if (this.hooks.record === false) return Promise.resolve();
    return this.request("POST", this.api + "/messages", { "Content-Type": "application/json" }, JSON.stringify({ body: text }))
      .then((res) => { if (!res.ok) this.hooks.status(t("The message was not saved on the thread.")); },
            () => this.hooks.status(t("The message was not saved on the thread (no connection).")));
  }

  /** While no data channel is open (the other side's page cannot reach us directly), read
      what reached the consult's thread since we last looked. */
  poll() {
    if (this.polling || !this.hooks.mayPoll()) return Promise.resolve();
    this.polling = true;
    return this.request("GET", this.api + "/call/feed?after_message=" + this.lastMessage + "&after_attachment=" + this.lastAttachment)
      .then((res) => {
        if (!res.ok) return;
        res.json.messages.forEach((m) => {
          this.lastMessage = Math.max(this.lastMessage, m.id);
          const key = m.author_name + "\n" + m.body;
          if (String(m.author_id) === this.me.id || this.photoMessages[m.id]) return;
          if (this.seenChat[key]) { this.seenChat[key]--; return; }
          this.add(m.author_name, m.body, false);
        });
        res.json.attachments.forEach((a) => {
          this.lastAttachment = Math.max(this.lastAttachment, a.id);
          if (String(a.uploaded_by_id) === this.me.id || this.seenAttachments[a.id]) return;
          this.seenAttachments[a.id] = true;
          if (a.kind === "image") this.showPhoto(a.uploader_name, a.id, a.filename);
          else this.add(a.uploader_name, "attached " + a.filename + " (on the consult page)", false);
        });
      })
      .catch(() => { /* offline: next time */ })
      .then(() => { this.polling = false; });
  }
}
