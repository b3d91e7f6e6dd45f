/* One RTCPeerConnection per other participant, with perfect negotiation: the server says
 * who is polite toward whom, the impolite side makes the first offer, a colliding offer is
 * ignored by the impolite side and accepted by the polite one (implicit rollback). Trickle
 * ICE, ICE restart when the connection fails or stays disconnected, and a negotiated data
 * channel (id 0, no glare over who opens it) for chat and photo notes. When no peer connects
 * for FAIL_AFTER_MS, or no candidate pair forms within PAIR_WITHIN_MS of a peer appearing,
 * the page is told the call cannot be held (and offers the thread).
 */
import { t } from "../i18n.js";
const FAIL_AFTER_MS = 30000; /* no media this long (ICE restarts included) */
/* No candidate pair at all this long after a peer appears (no ICE candidates: UDP blocked
   and no TURN relay): the thread is offered rather than "Joining…" for a minute. */
const PAIR_WITHIN_MS = 15000;

export class Peers {
  /* hooks: send(msg, queueIfDown), iceServers(), local() (the stream to send or null),
     added(peer) (e.g. apply the media profile), track(id, stream), removed(id), message(data),
     cannotHold();
     ui: {status(text), fallback(text), clearFallback()} */
  constructor(hooks, ui) {
    this.hooks = hooks;
    this.ui = ui;
    this.byId = {}; /* participant id -> {pc, polite, makingOffer, ignoreOffer, dc, info} */
    this.failTimer = null;
  }

  ids() { return Object.keys(this.byId); }
  list() { return this.ids().map((id) => this.byId[id]); }
  get(id) { return this.byId[id]; }

  add(info) {
    const id = info.participant;
    const pc = new RTCPeerConnection({ iceServers: this.hooks.iceServers().map((s) => {
      const o = { urls: s.urls };
      if (s.username) { o.username = s.username; o.credential = s.credential; }
      return o;
    }) });
    const peer = { pc, polite: info.polite, makingOffer: false, ignoreOffer: false, info };
    this.byId[id] = peer;
    peer.dc = pc.createDataChannel("chat", { negotiated: true, id: 0 });
    peer.dc.onmessage = (e) => this.hooks.message(e.data);
    const local = this.hooks.local();
    if (local) local.getTracks().forEach((t) => pc.addTrack(t, local));
    pc.ontrack = (e) => this.hooks.track(id, e.streams[0]);
    pc.onicecandidate = (e) => {
      this.hooks.send({ type: "candidate", to: id, candidate: e.candidate ? e.candidate.toJSON() : null }, true);
    };
    pc.onnegotiationneeded = () => {
      /* The first offer comes from the impolite side: two first offers crossing is glare
         that browsers do not always resolve. Later renegotiation may come from either. */
      if (peer.polite && !pc.remoteDescription) return;
      peer.makingOffer = true;
      pc.setLocalDescription().then(() => {
        this.hooks.send({ type: "offer", to: id, sdp: pc.localDescription.sdp }, true);
      }).catch((err) => console.warn("offer failed", err))
        .then(() => { peer.makingOffer = false; });
    };
    pc.oniceconnectionstatechange = () => {
      const state = pc.iceConnectionState;
      if (state === "failed") pc.restartIce();
      if (state === "disconnected") {
        setTimeout(() => { if (pc.iceConnectionState === "disconnected") pc.restartIce(); }, 3000);
      }
      this.watch();
    };
    pc.onconnectionstatechange = () => this.watch();
    peer.pairTimer = setTimeout(() => this.checkPair(id, peer), PAIR_WITHIN_MS);
    this.hooks.added(peer);
  }

  /** Whether ``peer`` has a candidate pair that works (or once worked). */
  hasPair(peer) {
    if (peer.pc.connectionState === "connected") return Promise.resolve(true);
    return peer.pc.getStats().then((stats) => {
      let found = false;
      stats.forEach((r) => { if (r.type === "candidate-pair" && r.state === "succeeded") found = true; });
      return found;
    }, () => false);
  }

  checkPair(id, peer) {
    if (this.byId[id] !== peer || this.connected()) return;
    this.hasPair(peer).then((paired) => {
      if (paired || this.byId[id] !== peer || this.connected()) return;
      this.ui.status(t("No media connection yet; still trying…"), "problem");
      this.hooks.cannotHold();
    });
  }

  /** The status line from the peers' state now (after a resume, nothing else fires). */
  showState() {
    if (!this.ids().length) return;
    if (this.connected()) this.ui.status(t("In the call."), "ok");
    else this.ui.status(t("Connecting media…"));
  }

  close(id) {
    const peer = this.byId[id];
    if (!peer) return;
    delete this.byId[id];
    clearTimeout(peer.pairTimer);
    try { peer.pc.close(); } catch (err) { /* closed already */ }
    this.hooks.removed(id);
  }

  closeAll() { this.ids().forEach((id) => this.close(id)); }

  /** An offer or answer relayed from another participant. */
  description(f) {
    const peer = this.byId[f.from];
    if (!peer) return;
    const pc = peer.pc;
    const collision = f.type === "offer" && (peer.makingOffer || pc.signalingState !== "stable");
    peer.ignoreOffer = !peer.polite && collision;
    if (peer.ignoreOffer) return;
    pc.setRemoteDescription({ type: f.type, sdp: f.sdp }).then(() => {
      if (f.type !== "offer") return null;
      return pc.setLocalDescription().then(() => {
        this.hooks.send({ type: "answer", to: f.from, sdp: pc.localDescription.sdp }, true);
      });
    }).catch((err) => console.warn("negotiation failed", err));
  }

  candidate(f) {
    const peer = this.byId[f.from];
    if (!peer || !f.candidate || !f.candidate.candidate) return; /* end-of-candidates */
    peer.pc.addIceCandidate(f.candidate).catch((err) => {
      if (!peer.ignoreOffer) console.warn("candidate refused", err);
    });
  }

  restartIce(id) {
    (id === undefined ? this.list() : [this.byId[id]]).forEach((peer) => { if (peer) peer.pc.restartIce(); });
  }

  connected() { return this.list().some((peer) => peer.pc.connectionState === "connected"); }

  /** The best state over the peers: a stale or rebuilding peer must not hide a live one. */
  connectionState() {
    const states = this.list().map((peer) => peer.pc.connectionState);
    if (!states.length) return "none";
    return states.indexOf("connected") >= 0 ? "connected" : states[0];
  }

  channelOpen() { return this.list().some((peer) => peer.dc.readyState === "open"); }

  /** Each remote peer's role and states, for tests and support (window.telemedCall.peers). */
  summary() {
    return this.list().map((peer) => ({
      participant: peer.info.participant, role: peer.info.role,
      connection: peer.pc.connectionState, channel: peer.dc.readyState
    }));
  }

  broadcast(msg) {
    this.list().forEach((peer) => { if (peer.dc.readyState === "open") peer.dc.send(JSON.stringify(msg)); });
  }

  closeChannels() { this.list().forEach((peer) => peer.dc.close()); }

  watch() {
    const peers = this.list();
    const connected = this.connected();
    const failed = peers.length && peers.every((peer) => peer.pc.connectionState === "failed");
    if (connected || !peers.length) {
      if (this.failTimer) { clearTimeout(this.failTimer); this.failTimer = null; }
      if (connected) { this.ui.clearFallback(); this.ui.status(t("In the call."), "ok"); }
    } else if (!this.failTimer) {
      this.ui.status(failed ? t("The media connection failed; retrying…") : t("Connecting media…"), failed ? "problem" : "info");
      this.failTimer = setTimeout(() => {
        this.failTimer = null;
        if (this.ids().length && !this.connected()) this.hooks.cannotHold();
      }, FAIL_AFTER_MS);
    }
  }
}
