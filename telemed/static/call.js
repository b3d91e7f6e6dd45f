/* The call page (templates/call.html): WebRTC over our signalling protocol
 * (docs/signaling-protocol.md), in native ES modules under call/ (no bundler; the template
 * preloads them all, so a slow link fetches them side by side): signalling, peers (perfect
 * negotiation), media (normal / low / audio-only), chat (data channel and thread feed),
 * photos (through ../uploader.js) and quality. This one wires them to the page. Browsers
 * without modules do not run it: all that have the WebRTC it needs have modules.
 * window.telemedCall exposes stats(), dropSocket() and dropChannels() for tests and support.
 */
import { Chat } from "./call/chat.js";
import { Media } from "./call/media.js";
import { Peers } from "./call/peers.js";
import { photoSharing } from "./call/photos.js";
import { Quality, REPORT_MS } from "./call/quality.js";
import { Signalling } from "./call/signalling.js";
import { t } from "./i18n.js";

/* A peer's media mode in words (the catalogue's, as telemed/sessions/panels.py says them). */
const MEDIA = { low: "low-bandwidth video", "audio-only": "audio only" };

const FEED_POLL_MS = 15000;
const ANSWER_WITHIN_MS = 15000; /* the call server's welcome */
const $ = (id) => document.getElementById(id);

/* A request with the page's cookie and CSRF token: resolves {ok, status, json}. */
const requester = (csrf) => (method, url, headers, body) =>
  fetch(url, { method, credentials: "same-origin", headers: Object.assign({ "X-CSRF-Token": csrf }, headers), body })
    .then((r) => r.text().then((text) => {
      let json = null;
      try { json = JSON.parse(text); } catch (err) { /* empty or not JSON */ }
      return { ok: r.ok, status: r.status, json };
    }));

/* The status line: "info" while joining or waiting, "ok" in the call (a calm style, not an
   alert), "problem" while something is being retried. */
const ui = {
  status(text, tone) {
    const line = $("call-status");
    line.textContent = text;
    line.setAttribute("data-tone", tone || "info");
    line.hidden = false;
  },
  fallback(text) {
    const box = $("call-fallback");
    box.querySelector("span").textContent = text;
    box.hidden = false;
  },
  clearFallback() { $("call-fallback").hidden = true; }
};

/* One video tile per remote peer (a mesh of up to three: docs/signaling-protocol.md §4),
   keyed by participant id and captioned with the peer's name and role. */
const tiles = {
  box: () => $("remote-videos"),
  get(id) { return this.box().querySelector("[data-peer=\"" + CSS.escape(id) + "\"]"); },
  show(id, stream) {
    let tile = this.get(id);
    if (!tile) {
      tile = document.createElement("figure");
      tile.className = "remote-tile";
      tile.setAttribute("data-peer", id);
      const video = document.createElement("video");
      video.autoplay = true;
      video.playsInline = true;
      tile.appendChild(video);
      tile.appendChild(document.createElement("figcaption"));
      this.box().appendChild(tile);
    }
    const video = tile.querySelector("video");
    if (video.srcObject !== stream) video.srcObject = stream;
  },
  label(info) {
    const tile = this.get(info.participant);
    if (tile) {
      tile.setAttribute("data-role", info.role);
      tile.querySelector("figcaption").textContent = info.name + " · " + t(info.role);
    }
  },
  remove(id) { const tile = this.get(id); if (tile) tile.remove(); }
};

function start(root) {
  const guest = root.getAttribute("data-guest") === "1"; /* invited to the call only */
  $("call-status").hidden = false; /* "Preparing camera and microphone…" */
  const consultId = root.getAttribute("data-consult");
  const csrf = root.getAttribute("data-csrf");
  const me = { id: root.getAttribute("data-user"), name: root.getAttribute("data-name") };
  const api = "/api/v1/consults/" + consultId;
  const request = requester(csrf);
  const checked = document.querySelector("input[name=profile]:checked");
  /* from the pre-call test, if any */
  const media = new Media(checked ? checked.value : "normal", $("camera"), $("microphone"), $("local-video"));

  const signalling = new Signalling(consultId, request, ui, onFrame);
  const peers = new Peers({
    send: (msg, queueIfDown) => signalling.send(msg, queueIfDown),
    iceServers: () => signalling.ticket.ice_servers,
    local: () => media.local,
    added: (peer) => media.applyProfile(peer),
    track: (id, stream) => { tiles.show(id, stream); if (peers.get(id)) tiles.label(peers.get(id).info); },
    removed: (id) => tiles.remove(id),
    message: (data) => chat.receive(data),
    cannotHold: () => {
      ui.fallback(t("The call cannot be held over this link just now. Messages and photos you send below still reach the consult's thread, and replies appear here."));
      chat.poll();
    }
  }, ui);
  const chat = new Chat(api, request, me, $("chat-log"), {
    message: parseInt(root.getAttribute("data-last-message"), 10) || 0,
    attachment: parseInt(root.getAttribute("data-last-attachment"), 10) || 0
  }, {
    broadcast: (msg) => peers.broadcast(msg),
    status: ui.status,
    /* nobody to hear from, or they are heard directly */
    record: !guest, /* a guest does not read or write the consult's thread */
    mayPoll: () => !guest && !signalling.leaving && !peers.channelOpen() && (peers.ids().length > 0 || !$("call-fallback").hidden)
  });
  const quality = new Quality({ peers, signalling, media, chat }, $("quality"));
  const sharePhoto = photoSharing({
    consultId, csrf, api, request, chat,
    broadcast: (msg) => peers.broadcast(msg),
    status: (text) => { $("photo-status").textContent = text; }
  });

  function onFrame(f) {
    switch (f.type) {
      case "welcome":
        peers.closeAll(); /* a new session: new peer connections */
        f.peers.forEach((p) => peers.add(p));
        if (media.mode !== "normal") signalling.send({ type: "media", mode: media.mode });
        presence();
        ui.clearFallback();
        break;
      case "resumed":
        /* Resumed on another instance (protocol §9): peer-* messages were not replayed, so
           a peer missing from the list left meanwhile. */
        if (f.moved) peers.ids().filter((id) => !f.peers.some((p) => p.participant === id)).forEach((id) => peers.close(id));
        f.peers.forEach((p) => { if (peers.get(p.participant)) peers.get(p.participant).info = p; else peers.add(p); });
        presence();
        ui.clearFallback();
        peers.showState(); /* the media never stopped: "reconnecting…" is over */
        break;
      case "peer-joined":
        /* Already known (e.g. listed in welcome just before this event): keep the peer
           connection unless the peer started a new session (rejoined), which rebuilds its
           own side too. Rebuilding one side alone would never connect. */
        if (peers.get(f.peer.participant) && !f.rejoined) {
          peers.get(f.peer.participant).info = f.peer;
        } else {
          peers.close(f.peer.participant);
          peers.add(f.peer);
        }
        presence();
        break;
      case "peer-updated":
        if (peers.get(f.peer.participant)) peers.get(f.peer.participant).info = f.peer;
        presence();
        break;
      case "peer-left":
        peers.close(f.participant);
        presence();
        break;
      case "offer": case "answer": peers.description(f); break;
      case "candidate": peers.candidate(f); break;
      case "ice-restart": peers.restartIce(f.from); break;
    }
  }

  function presence() {
    const list = $("presence");
    list.textContent = "";
    const mine = document.createElement("li");
    mine.textContent = t("%(name)s (you)", { name: me.name });
    list.appendChild(mine);
    const others = peers.list();
    others.forEach((peer) => {
      const p = peer.info, li = document.createElement("li");
      tiles.label(p);
      li.textContent = p.name + " · " + t(p.role) + (p.state === "reconnecting" ? " · " + t("reconnecting…") : "") +
        (p.media && p.media !== "normal" ? " · " + t(MEDIA[p.media] || p.media) : "");
      list.appendChild(li);
    });
    if (!others.length) ui.status(t("Waiting for the others to join…"));
    else if (peers.connected()) ui.status(t("In the call."), "ok");
  }

  function setProfile(mode) {
    media.setProfile(mode, peers.list());
    signalling.send({ type: "media", mode }, true);
  }

  /* ---------------------------------------------------------------- wiring */
  $("chat-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const input = $("chat-input"), text = input.value.trim();
    if (!text) return;
    input.value = "";
    chat.send(text);
  });
  function shareChosen(e) {
    if (e.type === "submit") e.preventDefault();
    const input = $("photo-input"), file = input.files && input.files[0];
    if (!file) return;
    input.value = "";
    sharePhoto(file);
  }
  if ($("photo-form")) { /* not for a guest: photos go on the consult's record */
    $("photo-form").addEventListener("submit", shareChosen);
    $("photo-input").addEventListener("change", shareChosen); /* no extra tap once chosen */
  }
  if ($("end-form")) {
    $("end-form").addEventListener("submit", (e) => {
      if (!window.confirm(t("End the consult now? It will be marked completed."))) { e.preventDefault(); return; }
      quality.report();
      peers.broadcast({ type: "end", name: me.name });
    });
  }
  document.querySelectorAll("input[name=profile]").forEach((radio) => {
    radio.addEventListener("change", () => { if (radio.checked) setProfile(radio.value); });
  });
  const switchDevice = () => media.switchDevice(peers.list())
    .catch((err) => ui.status(t("Could not switch device: %(error)s", { error: err.message })));
  $("camera").addEventListener("change", switchDevice);
  $("microphone").addEventListener("change", switchDevice);
  $("leave").addEventListener("click", () => {
    quality.report();
    signalling.leave();
    peers.closeAll();
    media.stop();
    ui.status(t("You left the call."));
    setTimeout(() => { window.location.href = "/consults/" + consultId; }, 300);
  });
  /* A network change: restart ICE at once rather than wait for it to fail. */
  window.addEventListener("online", () => {
    peers.restartIce();
    signalling.online();
  });
  if (navigator.connection && navigator.connection.addEventListener) {
    navigator.connection.addEventListener("change", () => peers.restartIce());
  }
  window.addEventListener("pagehide", () => { if (!signalling.leaving && signalling.ws) signalling.leave(); });

  window.telemedCall = {
    stats: () => quality.stats(),
    dropSocket: () => { if (signalling.ws) signalling.ws.close(4000, "dropped for a test"); },
    dropChannels: () => peers.closeChannels(),
    peers: () => peers.summary(),
    setProfile,
    sendChat: (text) => chat.send(text),
    pollFeed: () => chat.poll()
  };

  setInterval(() => quality.update(), 2000);
  setInterval(() => quality.report(), REPORT_MS);
  setInterval(() => chat.poll(), FEED_POLL_MS);

  media.open(() => { document.querySelector("input[value=audio-only]").checked = true; })
    .then(() => media.listDevices(), () => {
      ui.fallback(t("No camera or microphone is available: you can still chat here."));
    })
    .then(() => {
      ui.status(t("Joining the call…"));
      /* The call server unreachable (a proxy that drops WebSockets): say so, with the way on. */
      setTimeout(() => {
        if (!signalling.sessionId) ui.fallback(t("The call server does not answer."));
      }, ANSWER_WITHIN_MS);
      return signalling.join();
    })
    .catch((err) => ui.fallback(t("The call cannot be started (%(error)s).", { error: err.message })));
}

const root = $("call");
if (root && window.RTCPeerConnection && window.WebSocket) start(root);
else if (root) ui.fallback(t("This browser cannot hold calls."));
