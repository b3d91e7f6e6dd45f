/* The call page (templates/call.html): WebRTC over our signalling protocol
 * (docs/signaling-protocol.md). Perfect negotiation with the polite role from the server,
 * trickle ICE, a low-bandwidth profile and an audio-only switch (RTCRtpSender.setParameters;
 * the starting profile comes from the pre-call test when there was one), chat and photos over
 * a data channel (each message also POSTed to the consult's thread; photos go through the
 * resumable attachments API first), a quality indicator from getStats(), and automatic resume
 * of the socket / ICE restart after a network change. While no data channel is open the page
 * reads what reached the thread instead (GET .../call/feed). When the call cannot be held the
 * page says so and points to the thread.
 * window.telemedCall exposes stats(), dropSocket() and dropChannels() for tests and support.
 * No framework.
 */
(function () {
  "use strict";
  var root = document.getElementById("call");
  if (!root || !window.RTCPeerConnection || !window.WebSocket) return;
  var consultId = root.getAttribute("data-consult");
  var csrf = root.getAttribute("data-csrf");
  var myName = root.getAttribute("data-name");
  var myId = root.getAttribute("data-user");
  var api = "/api/v1/consults/" + consultId;
  var $ = function (id) { return document.getElementById(id); };
  var LOW_BPS = 200000; /* "low" profile: about 200 kbit/s of video */
  var QUALITY_REPORT_MS = 30000;
  var FAIL_AFTER_MS = 30000; /* no media this long (ICE restarts included): say the call cannot be held */
  var FEED_POLL_MS = 15000;
  var CHUNK = 256 * 1024; /* photo upload chunks */

  var ticket = null; /* from POST /api/v1/consults/{id}/call */
  var ws = null, sessionId = null, resumeToken = null, lastSeq = 0, grace = 30;
  var rid = 0, leaving = false, replaced = false, droppedAt = 0, attempt = 0;
  var resumes = 0, fullReconnects = 0, outbox = [], attached = false, code4404 = false;
  var checked = document.querySelector("input[name=profile]:checked");
  var local = null, mode = checked ? checked.value : "normal"; /* from the pre-call test, if any */
  var peers = {}; /* participant id -> {pc, polite, makingOffer, ignoreOffer, dc, info} */
  var lastStats = { framesDecoded: 0, bytesReceived: 0, at: 0 };
  var chatLog = [];
  var heartbeat = null, failTimer = null;
  /* What came over the data channel, so the thread feed does not show it twice. */
  var seenChat = {}, seenAttachments = {}, photoMessages = {}, polling = false;
  var lastMessage = parseInt(root.getAttribute("data-last-message"), 10) || 0;
  var lastAttachment = parseInt(root.getAttribute("data-last-attachment"), 10) || 0;

  function status(text) { $("call-status").textContent = text; }
  function fallback(text) {
    var box = $("call-fallback");
    box.querySelector("span").textContent = text;
    box.hidden = false;
  }
  function clearFallback() { $("call-fallback").hidden = true; }

  /* ---------------------------------------------------------------- the ticket */
  function fetchTicket() {
    return fetch("/api/v1/consults/" + consultId + "/call", {
      method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf }
    }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) throw new Error((body.error && body.error.message) || "no ticket");
        ticket = body;
        return body;
      });
    });
  }

  /* ---------------------------------------------------------------- signalling */
  function send(msg, queueIfDown) {
    if (ws && ws.readyState === 1 && attached) {
      msg.rid = String(++rid);
      ws.send(JSON.stringify(msg));
    } else if (queueIfDown) {
      outbox.push(msg);
    }
  }

  function openSocket(first) {
    attached = false;
    ws = new WebSocket(ticket.ws_url);
    var sock = ws;
    sock.onopen = function () { sock.send(JSON.stringify(first)); };
    sock.onmessage = function (e) { if (sock === ws) onFrame(JSON.parse(e.data)); };
    sock.onclose = function (e) { if (sock === ws) onClose(e.code); };
  }

  function join() {
    return fetchTicket().then(function () {
      sessionId = null;
      openSocket({ type: "hello", rid: "h" + (++rid), room: ticket.room, token: ticket.token,
                   client: navigator.userAgent.slice(0, 200) });
    });
  }

  function onClose(code) {
    attached = false;
    stopHeartbeat();
    if (leaving) return;
    if (code === 4409) { replaced = true; fallback("This call was opened in another window."); return; }
    if (code === 4400 || code === 4401 || code === 4403) {
      fallback(code === 4403 ? "The call is full." : "The call refused this page.");
      return;
    }
    if (!droppedAt) droppedAt = Date.now();
    status("Connection to the call server lost; reconnecting…");
    var delay = Math.min(5000, 500 * Math.pow(2, attempt++)) * (0.75 + Math.random() / 2);
    setTimeout(reconnect, delay);
  }

  function reconnect() {
    if (leaving || replaced) return;
    var withinGrace = sessionId && (Date.now() - droppedAt) / 1000 < grace;
    if (code4404 || !withinGrace) {
      code4404 = false;
      fullReconnects++;
      join().catch(function (err) {
        fallback("The call cannot be held (" + err.message + ").");
        onClose(1006);
      });
      return;
    }
    openSocket({ type: "resume", rid: "r" + (++rid), session: sessionId,
                 resume_token: resumeToken, last_seq: lastSeq });
  }

  function startHeartbeat(seconds) {
    stopHeartbeat();
    heartbeat = setInterval(function () { send({ type: "ping" }); }, Math.max(2, seconds) * 1000);
  }
  function stopHeartbeat() { if (heartbeat) clearInterval(heartbeat); heartbeat = null; }

  function onFrame(f) {
    if (f.type !== "welcome" && f.type !== "resumed" && typeof f.seq === "number" && f.seq > lastSeq) lastSeq = f.seq;
    switch (f.type) {
      case "welcome":
        sessionId = f.session; resumeToken = f.resume_token; lastSeq = f.seq || 0; attached = true;
        grace = (f.limits && f.limits.grace_s) || 30;
        startHeartbeat((f.limits && f.limits.heartbeat_s) || 10);
        attempt = 0; droppedAt = 0; outbox = [];
        Object.keys(peers).forEach(closePeer); /* a new session: new peer connections */
        f.peers.forEach(addPeer);
        if (mode !== "normal") send({ type: "media", mode: mode });
        onPresence();
        clearFallback();
        break;
      case "resumed":
        sessionId = f.session; resumeToken = f.resume_token; attached = true;
        resumes++; attempt = 0; droppedAt = 0;
        startHeartbeat(10);
        f.peers.forEach(function (p) { if (peers[p.participant]) peers[p.participant].info = p; else addPeer(p); });
        outbox.splice(0).forEach(function (m) { send(m); });
        onPresence();
        clearFallback();
        break;
      case "peer-joined":
        /* Already known (e.g. listed in welcome just before this event): keep the peer
           connection unless the peer started a new session (rejoined), which rebuilds its
           own side too. Rebuilding one side alone would never connect. */
        if (peers[f.peer.participant] && !f.rejoined) {
          peers[f.peer.participant].info = f.peer;
        } else {
          closePeer(f.peer.participant);
          addPeer(f.peer);
        }
        onPresence();
        break;
      case "peer-updated":
        if (peers[f.peer.participant]) peers[f.peer.participant].info = f.peer;
        onPresence();
        break;
      case "peer-left":
        closePeer(f.participant);
        onPresence();
        break;
      case "offer": case "answer": onDescription(f); break;
      case "candidate": onCandidate(f); break;
      case "ice-restart":
        if (peers[f.from]) peers[f.from].pc.restartIce();
        break;
      case "error":
        if (f.code === "resume_failed") code4404 = true;
        if (f.code === "unknown_peer") break;
        if (f.fatal && f.code !== "resume_failed" && f.code !== "replaced") status("Call server: " + f.message);
        break;
    }
  }

  /* ---------------------------------------------------------------- peers */
  function addPeer(info) {
    var id = info.participant;
    var pc = new RTCPeerConnection({ iceServers: ticket.ice_servers.map(function (s) {
      var o = { urls: s.urls };
      if (s.username) { o.username = s.username; o.credential = s.credential; }
      return o;
    }) });
    var peer = { pc: pc, polite: info.polite, makingOffer: false, ignoreOffer: false, info: info };
    peers[id] = peer;
    /* Negotiated on both sides: no glare over who creates it. */
    peer.dc = pc.createDataChannel("chat", { negotiated: true, id: 0 });
    peer.dc.onmessage = function (e) { onChannelMessage(e.data); };
    if (local) local.getTracks().forEach(function (t) { pc.addTrack(t, local); });
    pc.ontrack = function (e) {
      var video = $("remote-video");
      if (video.srcObject !== e.streams[0]) video.srcObject = e.streams[0];
    };
    pc.onicecandidate = function (e) {
      send({ type: "candidate", to: id, candidate: e.candidate ? e.candidate.toJSON() : null }, true);
    };
    pc.onnegotiationneeded = function () {
      /* The first offer comes from the impolite side: two first offers crossing is glare
         that browsers do not always resolve. Later renegotiation may come from either. */
      if (peer.polite && !pc.remoteDescription) return;
      peer.makingOffer = true;
      pc.setLocalDescription().then(function () {
        send({ type: "offer", to: id, sdp: pc.localDescription.sdp }, true);
      }).catch(function (err) { console.warn("offer failed", err); })
        .then(function () { peer.makingOffer = false; });
    };
    pc.oniceconnectionstatechange = function () {
      var state = pc.iceConnectionState;
      if (state === "failed") pc.restartIce();
      if (state === "disconnected") {
        setTimeout(function () { if (pc.iceConnectionState === "disconnected") pc.restartIce(); }, 3000);
      }
      watchConnection();
    };
    pc.onconnectionstatechange = watchConnection;
    applyProfile(peer);
  }

  function closePeer(id) {
    var peer = peers[id];
    if (!peer) return;
    delete peers[id];
    try { peer.pc.close(); } catch (err) { /* closed already */ }
  }

  function onDescription(f) {
    var peer = peers[f.from];
    if (!peer) return;
    var pc = peer.pc;
    var description = { type: f.type, sdp: f.sdp };
    var collision = f.type === "offer" && (peer.makingOffer || pc.signalingState !== "stable");
    peer.ignoreOffer = !peer.polite && collision;
    if (peer.ignoreOffer) return;
    pc.setRemoteDescription(description).then(function () {
      if (f.type !== "offer") return null;
      return pc.setLocalDescription().then(function () {
        send({ type: "answer", to: f.from, sdp: pc.localDescription.sdp }, true);
      });
    }).catch(function (err) { console.warn("negotiation failed", err); });
  }

  function onCandidate(f) {
    var peer = peers[f.from];
    if (!peer || !f.candidate || !f.candidate.candidate) return; /* end-of-candidates */
    peer.pc.addIceCandidate(f.candidate).catch(function (err) {
      if (!peer.ignoreOffer) console.warn("candidate refused", err);
    });
  }

  function watchConnection() {
    var ids = Object.keys(peers);
    var connected = ids.some(function (id) { return peers[id].pc.connectionState === "connected"; });
    var failed = ids.length && ids.every(function (id) {
      return peers[id].pc.connectionState === "failed";
    });
    if (connected || !ids.length) {
      if (failTimer) { clearTimeout(failTimer); failTimer = null; }
      if (connected) { clearFallback(); status("In the call."); }
    } else if (!failTimer) {
      status(failed ? "The media connection failed; retrying…" : "Connecting media…");
      failTimer = setTimeout(function () {
        failTimer = null;
        var now = Object.keys(peers);
        if (now.length && !now.some(function (id) { return peers[id].pc.connectionState === "connected"; })) {
          fallback("The call cannot be held over this link just now. Messages and photos you send " +
                   "below still reach the consult's thread, and replies appear here.");
          pollFeed();
        }
      }, FAIL_AFTER_MS);
    }
  }

  function onPresence() {
    var list = $("presence");
    list.textContent = "";
    var me = document.createElement("li");
    me.textContent = myName + " (you)";
    list.appendChild(me);
    var ids = Object.keys(peers);
    ids.forEach(function (id) {
      var p = peers[id].info, li = document.createElement("li");
      li.textContent = p.name + " · " + p.role + (p.state === "reconnecting" ? " · reconnecting…" : "") +
        (p.media && p.media !== "normal" ? " · " + p.media : "");
      list.appendChild(li);
    });
    if (!ids.length) status("Waiting for the others to join…");
  }

  /* ---------------------------------------------------------------- media */
  function getMedia() {
    var cam = $("camera").value, mic = $("microphone").value;
    var constraints = {
      audio: mic ? { deviceId: { exact: mic } } : true,
      video: mode === "audio-only" ? false :
        (cam ? { deviceId: { exact: cam }, width: 640, height: 360 } : { width: 640, height: 360 })
    };
    return navigator.mediaDevices.getUserMedia(constraints);
  }

  function listDevices() {
    return navigator.mediaDevices.enumerateDevices().then(function (devices) {
      [["videoinput", "camera"], ["audioinput", "microphone"]].forEach(function (pair) {
        var select = $(pair[1]), current = select.value;
        select.textContent = "";
        devices.filter(function (d) { return d.kind === pair[0]; }).forEach(function (d, i) {
          var o = document.createElement("option");
          o.value = d.deviceId;
          o.textContent = d.label || pair[1] + " " + (i + 1);
          select.appendChild(o);
        });
        if (current) select.value = current;
      });
    });
  }

  function switchDevice() {
    getMedia().then(function (stream) {
      stream.getTracks().forEach(function (track) {
        Object.keys(peers).forEach(function (id) {
          peers[id].pc.getSenders().forEach(function (s) {
            if (s.track && s.track.kind === track.kind) s.replaceTrack(track);
          });
        });
      });
      if (local) local.getTracks().forEach(function (t) { t.stop(); });
      local = stream;
      $("local-video").srcObject = stream;
    }).catch(function (err) { status("Could not switch device: " + err.message); });
  }

  function applyProfile(peer) {
    peer.pc.getSenders().forEach(function (sender) {
      if (!sender.track || sender.track.kind !== "video") return;
      var params = sender.getParameters();
      if (!params.encodings || !params.encodings.length) params.encodings = [{}];
      var enc = params.encodings[0];
      enc.active = mode !== "audio-only";
      if (mode === "low") { enc.maxBitrate = LOW_BPS; enc.scaleResolutionDownBy = 2; }
      else { delete enc.maxBitrate; enc.scaleResolutionDownBy = 1; }
      sender.setParameters(params).catch(function (err) { console.warn("setParameters", err); });
    });
  }

  function setProfile(next) {
    mode = next;
    Object.keys(peers).forEach(function (id) { applyProfile(peers[id]); });
    if (local) local.getVideoTracks().forEach(function (t) { t.enabled = mode !== "audio-only"; });
    send({ type: "media", mode: mode }, true);
  }

  /* ---------------------------------------------------------------- chat and photos */
  function addChat(name, text, mine) {
    chatLog.push({ name: name, text: text, mine: mine });
    var li = document.createElement("li");
    li.textContent = name + ": " + text;
    $("chat-log").appendChild(li);
  }

  /* The preview (at most 100 KB) from the app, with this page's own cookie: access as usual. */
  function showPhoto(name, id, filename) {
    chatLog.push({ name: name, photo: id, mine: name === myName });
    var li = document.createElement("li"), a = document.createElement("a"), img = document.createElement("img");
    li.appendChild(document.createTextNode(name + " shared a photo: "));
    a.href = "/attachments/" + id + "/original";
    a.title = "Download the original";
    img.src = "/api/v1/attachments/" + id + "/preview";
    img.alt = filename;
    img.className = "shared-photo";
    img.style.display = "block";
    img.style.maxWidth = "min(100%, 320px)";
    a.appendChild(img);
    li.appendChild(a);
    $("chat-log").appendChild(li);
  }

  function channelOpen() {
    return Object.keys(peers).some(function (id) { return peers[id].dc.readyState === "open"; });
  }

  function broadcast(msg) {
    Object.keys(peers).forEach(function (id) {
      var dc = peers[id].dc;
      if (dc.readyState === "open") dc.send(JSON.stringify(msg));
    });
  }

  function onChannelMessage(data) {
    var m;
    try { m = JSON.parse(data); } catch (err) { return; }
    var name = String(m.name || "someone");
    if (m.type === "photo") {
      var id = parseInt(m.attachment, 10);
      if (m.message) photoMessages[m.message] = true;
      if (id > 0 && !seenAttachments[id]) { seenAttachments[id] = true; showPhoto(name, id, String(m.filename || "photo")); }
    } else if (m.type === "end") {
      status(name + " ended the consult. You can leave the call.");
    } else if (typeof m.text === "string") {
      var key = name + "\n" + m.text;
      seenChat[key] = (seenChat[key] || 0) + 1;
      addChat(name, m.text, false);
    }
  }

  function sendChat(text) {
    addChat(myName, text, true);
    broadcast({ type: "chat", name: myName, text: text });
    /* The thread keeps it, whether or not the data channel carried it. */
    return request("POST", api + "/messages", { "Content-Type": "application/json" }, JSON.stringify({ body: text }))
      .then(function (res) { if (!res.ok) status("The message was not saved on the thread."); },
            function () { status("The message was not saved on the thread (no connection)."); });
  }

  /* One request with this page's cookie and CSRF token: {ok, status, json}. */
  function request(method, url, headers, body) {
    headers = headers || {};
    headers["X-CSRF-Token"] = csrf;
    return fetch(url, { method: method, credentials: "same-origin", headers: headers, body: body })
      .then(function (r) {
        return r.text().then(function (text) {
          var json = null;
          try { json = JSON.parse(text); } catch (err) { /* empty or not JSON */ }
          return { ok: r.ok, status: r.status, json: json };
        });
      });
  }

  function refused(res, why) {
    var err = new Error(why || (res.json && res.json.error && res.json.error.message) || "the server answered " + res.status);
    err.refused = true;
    return err;
  }

  function later(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }

  function photoStatus(text) { $("photo-status").textContent = text; }

  /* The resumable upload in chunks; after a drop, ask the server where it is and go on. */
  function sendChunks(file, url, offset, failures) {
    photoStatus("Sending the photo… " + Math.round(100 * offset / file.size) + "%");
    var headers = { "Content-Type": "application/offset+octet-stream", "Upload-Offset": String(offset) };
    return request("PATCH", url, headers, file.slice(offset, Math.min(offset + CHUNK, file.size)))
      .then(function (res) {
        if (res.ok) return res.json.state === "complete" ? res.json.attachment : sendChunks(file, url, res.json.offset, 0);
        if (res.status >= 400 && res.status < 500 && [408, 409, 429].indexOf(res.status) < 0) throw refused(res);
        return resumeUpload(file, url, failures + 1);
      }, function () { return resumeUpload(file, url, failures + 1); });
  }

  function resumeUpload(file, url, failures) {
    if (failures > 8) return Promise.reject(new Error("the connection keeps dropping; try again"));
    return later(Math.min(30000, 1000 * Math.pow(2, failures - 1))).then(function () {
      return request("GET", url);
    }).then(function (res) {
      if (res.status !== 200) throw refused(res);
      if (res.json.attachment) return res.json.attachment;
      if (res.json.state !== "open") throw refused(res, res.json.failure || "the upload " + res.json.state);
      return sendChunks(file, url, res.json.offset, failures);
    }, function () { return resumeUpload(file, url, failures + 1); });
  }

  /* A thread message "shared a photo", the photo attached to it, then a note to the others. */
  function sharePhoto(file) {
    var info = { filename: file.name, length: file.size, media_type: file.type || "application/octet-stream" };
    var json = { "Content-Type": "application/json" };
    photoStatus("Sending the photo…");
    return request("POST", api + "/call/photos", json, JSON.stringify(info)).then(function (res) {
      if (res.status !== 201) throw refused(res);
      info.message_id = res.json.message_id;
      photoMessages[info.message_id] = true;
      return request("POST", api + "/uploads", json, JSON.stringify(info));
    }).then(function (res) {
      if (res.status !== 201) throw refused(res);
      return sendChunks(file, res.json.url, 0, 0);
    }).then(function (attachment) {
      seenAttachments[attachment.id] = true;
      showPhoto(myName, attachment.id, attachment.filename);
      broadcast({ type: "photo", name: myName, attachment: attachment.id, filename: attachment.filename,
                  message: info.message_id });
      photoStatus("");
    }).catch(function (err) { photoStatus("The photo was not sent: " + err.message); });
  }

  /* While no data channel is open (the other side's page cannot reach us directly), read
     what reached the consult's thread since we last looked. */
  function pollFeed() {
    if (leaving || polling || channelOpen()) return Promise.resolve();
    if (!Object.keys(peers).length && $("call-fallback").hidden) return Promise.resolve(); /* nobody to hear from */
    polling = true;
    return request("GET", api + "/call/feed?after_message=" + lastMessage + "&after_attachment=" + lastAttachment)
      .then(function (res) {
        if (!res.ok) return;
        res.json.messages.forEach(function (m) {
          lastMessage = Math.max(lastMessage, m.id);
          var key = m.author_name + "\n" + m.body;
          if (String(m.author_id) === myId || photoMessages[m.id]) return;
          if (seenChat[key]) { seenChat[key]--; return; }
          addChat(m.author_name, m.body, false);
        });
        res.json.attachments.forEach(function (a) {
          lastAttachment = Math.max(lastAttachment, a.id);
          if (String(a.uploaded_by_id) === myId || seenAttachments[a.id]) return;
          seenAttachments[a.id] = true;
          if (a.kind === "image") showPhoto(a.uploader_name, a.id, a.filename);
          else addChat(a.uploader_name, "attached " + a.filename + " (on the consult page)", false);
        });
      })
      .catch(function () { /* offline: next time */ })
      .then(function () { polling = false; });
  }

  /* ---------------------------------------------------------------- quality */
  // The best state over the peers: a stale or rebuilding peer must not hide a live one.
  function connectionState(ids) {
    var states = ids.map(function (id) { return peers[id].pc.connectionState; });
    if (!states.length) return "none";
    return states.indexOf("connected") >= 0 ? "connected" : states[0];
  }

  function stats() {
    var ids = Object.keys(peers);
    var out = { framesDecoded: 0, framesEncoded: 0, bytesReceived: 0, bytesSent: 0, rttMs: null,
      packetsLost: 0, packetsReceived: 0, peers: ids.length, resumes: resumes,
      fullReconnects: fullReconnects, socket: ws ? ws.readyState : -1, session: sessionId,
      connection: connectionState(ids), mode: mode,
      chat: chatLog.slice() };
    return Promise.all(ids.map(function (id) { return peers[id].pc.getStats(); })).then(function (reports) {
      reports.forEach(function (report) {
        report.forEach(function (s) {
          if (s.type === "inbound-rtp") {
            if (s.kind === "video") out.framesDecoded += s.framesDecoded || 0;
            out.bytesReceived += s.bytesReceived || 0;
            out.packetsLost += s.packetsLost || 0;
            out.packetsReceived += s.packetsReceived || 0;
          } else if (s.type === "outbound-rtp") {
            if (s.kind === "video") out.framesEncoded += s.framesEncoded || 0;
            out.bytesSent += s.bytesSent || 0;
          } else if (s.type === "candidate-pair" && s.nominated && s.currentRoundTripTime !== undefined) {
            out.rttMs = s.currentRoundTripTime * 1000;
          }
        });
      });
      return out;
    });
  }

  function updateQuality() {
    return stats().then(function (s) {
      var now = Date.now(), seconds = (now - lastStats.at) / 1000;
      var kbps = lastStats.at ? Math.max(0, (s.bytesReceived - lastStats.bytesReceived) * 8 / 1000 / seconds) : 0;
      var total = s.packetsLost + s.packetsReceived;
      var loss = total ? s.packetsLost / total : 0;
      lastStats = { framesDecoded: s.framesDecoded, bytesReceived: s.bytesReceived, at: now,
                    kbps: kbps, loss: loss, rtt: s.rttMs };
      var label = "unknown";
      if (s.connection === "connected") {
        label = (s.rttMs !== null && s.rttMs > 400) || loss > 0.05 || kbps < 30 ? "poor" :
          (s.rttMs !== null && s.rttMs > 200) || loss > 0.02 ? "fair" : "good";
      }
      var el = $("quality");
      el.textContent = label + (s.rttMs !== null ? " · " + Math.round(s.rttMs) + " ms" : "") +
        (kbps ? " · " + Math.round(kbps) + " kbit/s" : "");
      el.className = "quality quality-" + label;
    });
  }

  function reportQuality() {
    if (!lastStats.at || !Object.keys(peers).length) return;
    var report = { kbps_in: Math.round(lastStats.kbps || 0), loss: Number((lastStats.loss || 0).toFixed(4)) };
    if (lastStats.rtt !== null && lastStats.rtt !== undefined) report.rtt_ms = Math.round(lastStats.rtt);
    send({ type: "quality", stats: report });
  }

  /* ---------------------------------------------------------------- wiring */
  $("chat-form").addEventListener("submit", function (e) {
    e.preventDefault();
    var input = $("chat-input"), text = input.value.trim();
    if (!text) return;
    input.value = "";
    sendChat(text);
  });
  function shareChosen(e) {
    if (e.type === "submit") e.preventDefault();
    var input = $("photo-input"), file = input.files && input.files[0];
    if (!file) return;
    input.value = "";
    sharePhoto(file);
  }
  $("photo-form").addEventListener("submit", shareChosen);
  $("photo-input").addEventListener("change", shareChosen); /* no extra tap once chosen */
  if ($("end-form")) {
    $("end-form").addEventListener("submit", function (e) {
      if (!window.confirm("End the consult now? It will be marked completed.")) { e.preventDefault(); return; }
      reportQuality();
      broadcast({ type: "end", name: myName });
    });
  }
  Array.prototype.forEach.call(document.querySelectorAll("input[name=profile]"), function (radio) {
    radio.addEventListener("change", function () { if (radio.checked) setProfile(radio.value); });
  });
  $("camera").addEventListener("change", switchDevice);
  $("microphone").addEventListener("change", switchDevice);
  $("leave").addEventListener("click", function () {
    reportQuality();
    leaving = true;
    send({ type: "leave" });
    Object.keys(peers).forEach(closePeer);
    if (local) local.getTracks().forEach(function (t) { t.stop(); });
    status("You left the call.");
    setTimeout(function () { window.location.href = "/consults/" + consultId; }, 300);
  });
  /* A network change: restart ICE at once rather than wait for it to fail. */
  window.addEventListener("online", function () {
    Object.keys(peers).forEach(function (id) { peers[id].pc.restartIce(); });
    if (ws && ws.readyState > 1 && !leaving) reconnect();
  });
  if (navigator.connection && navigator.connection.addEventListener) {
    navigator.connection.addEventListener("change", function () {
      Object.keys(peers).forEach(function (id) { peers[id].pc.restartIce(); });
    });
  }
  window.addEventListener("pagehide", function () { if (!leaving && ws) { leaving = true; send({ type: "leave" }); } });

  window.telemedCall = {
    stats: stats,
    dropSocket: function () { if (ws) ws.close(4000, "dropped for a test"); },
    dropChannels: function () { Object.keys(peers).forEach(function (id) { peers[id].dc.close(); }); },
    setProfile: setProfile,
    sendChat: sendChat,
    pollFeed: pollFeed
  };

  setInterval(updateQuality, 2000);
  setInterval(reportQuality, QUALITY_REPORT_MS);
  setInterval(pollFeed, FEED_POLL_MS);

  navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 360 } })
    .catch(function () {
      mode = "audio-only";
      document.querySelector("input[value=audio-only]").checked = true;
      return navigator.mediaDevices.getUserMedia({ audio: true, video: false });
    })
    .then(function (stream) {
      local = stream;
      local.getVideoTracks().forEach(function (t) { t.enabled = mode !== "audio-only"; });
      $("local-video").srcObject = stream;
      return listDevices();
    }, function () {
      fallback("No camera or microphone is available: you can still chat here.");
    })
    .then(function () {
      status("Joining the call…");
      return join();
    })
    .catch(function (err) {
      fallback("The call cannot be started (" + err.message + ").");
    });
})();
