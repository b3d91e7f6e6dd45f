/* The signalling client (docs/signaling-protocol.md): a one-use ticket from the app, one
 * WebSocket to the signalling server, hello then heartbeats, and after a drop a resume
 * within the server's grace period (with backoff) or else a fresh join. Messages sent with
 * queueIfDown wait in an outbox for the resume. Every frame goes on to onFrame once the
 * session's own bookkeeping is done.
 */
import { t } from "../i18n.js";
export class Signalling {
  /* ui: {status(text), fallback(text)} */
  constructor(consultId, request, ui, onFrame) {
    this.consultId = consultId;
    this.request = request;
    this.ui = ui;
    this.onFrame = onFrame;
    this.ticket = null; /* from POST /api/v1/consults/{id}/call: ws_url, room, token, ice_servers */
    this.ws = null;
    this.sessionId = null;
    this.resumeToken = null;
    this.lastSeq = 0;
    this.grace = 30;
    this.rid = 0;
    this.leaving = false;
    this.replaced = false;
    this.droppedAt = 0;
    this.attempt = 0;
    this.resumes = 0;
    this.fullReconnects = 0;
    this.outbox = [];
    this.attached = false;
    this.resumeFailed = false;
    this.heartbeat = null;
  }

  async join() {
    const res = await this.request("POST", "/api/v1/consults/" + this.consultId + "/call");
    if (!res.ok) throw new Error((res.json && res.json.error && res.json.error.message) || "no ticket");
    this.ticket = res.json;
    this.sessionId = null;
    this.open({ type: "hello", rid: "h" + (++this.rid), room: this.ticket.room, token: this.ticket.token,
                client: navigator.userAgent.slice(0, 200) });
  }

  /** Send now if attached; otherwise drop it, or keep it for the resume if queueIfDown. */
  send(msg, queueIfDown) {
    if (this.ws && this.ws.readyState === 1 && this.attached) {
      msg.rid = String(++this.rid);
      this.ws.send(JSON.stringify(msg));
    } else if (queueIfDown) {
      this.outbox.push(msg);
    }
  }

  open(first) {
    this.attached = false;
    const sock = this.ws = new WebSocket(this.ticket.ws_url);
    sock.onopen = () => sock.send(JSON.stringify(first));
    sock.onmessage = (e) => { if (sock === this.ws) this.receive(JSON.parse(e.data)); };
    sock.onclose = (e) => { if (sock === this.ws) this.closed(e.code); };
  }

  closed(code) {
    this.attached = false;
    this.stopHeartbeat();
    if (this.leaving) return;
    if (code === 4409) { this.replaced = true; this.ui.fallback(t("This call was opened in another window.")); return; }
    if (code === 4400 || code === 4401 || code === 4403) {
      this.ui.fallback(code === 4403 ? t("The call is full.") : t("The call refused this page."));
      return;
    }
    if (!this.droppedAt) this.droppedAt = Date.now();
    this.ui.status(t("Connection to the call server lost; reconnecting…"), "problem");
    const delay = Math.min(5000, 500 * Math.pow(2, this.attempt++)) * (0.75 + Math.random() / 2);
    setTimeout(() => this.reconnect(), delay);
  }

  reconnect() {
    if (this.leaving || this.replaced) return;
    const withinGrace = this.sessionId && (Date.now() - this.droppedAt) / 1000 < this.grace;
    if (this.resumeFailed || !withinGrace) {
      this.resumeFailed = false;
      this.fullReconnects++;
      this.join().catch((err) => {
        this.ui.fallback(t("The call cannot be held (%(error)s).", { error: err.message }));
        this.closed(1006);
      });
      return;
    }
    this.open({ type: "resume", rid: "r" + (++this.rid), session: this.sessionId,
                resume_token: this.resumeToken, last_seq: this.lastSeq });
  }

  /** A network change: a closed socket reconnects at once rather than after its backoff. */
  online() {
    if (this.ws && this.ws.readyState > 1 && !this.leaving) this.reconnect();
  }

  leave() {
    this.leaving = true;
    this.send({ type: "leave" });
  }

  startHeartbeat(seconds) {
    this.stopHeartbeat();
    this.heartbeat = setInterval(() => this.send({ type: "ping" }), Math.max(2, seconds) * 1000);
  }

  stopHeartbeat() {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
  }

  receive(f) {
    if (f.type !== "welcome" && f.type !== "resumed" && typeof f.seq === "number" && f.seq > this.lastSeq) this.lastSeq = f.seq;
    if (f.type === "welcome") {
      this.sessionId = f.session; this.resumeToken = f.resume_token; this.lastSeq = f.seq || 0; this.attached = true;
      this.grace = (f.limits && f.limits.grace_s) || 30;
      this.startHeartbeat((f.limits && f.limits.heartbeat_s) || 10);
      this.attempt = 0; this.droppedAt = 0; this.outbox = [];
    } else if (f.type === "resumed") {
      this.sessionId = f.session; this.resumeToken = f.resume_token; this.attached = true;
      this.resumes++; this.attempt = 0; this.droppedAt = 0;
      this.startHeartbeat(10);
    } else if (f.type === "error") {
      if (f.code === "resume_failed") this.resumeFailed = true;
      if (f.fatal && f.code !== "resume_failed" && f.code !== "replaced" && f.code !== "unknown_peer") {
        this.ui.status(t("Call server: %(error)s", { error: f.message }), "problem");
      }
    }
    this.onFrame(f);
    if (f.type === "resumed") this.outbox.splice(0).forEach((m) => this.send(m));
  }
}
