/* The network test page (templates/precall.html). Connects to the server's echo peer
 * (telemed/precall/echo.py) with two data channels, measures round trip and loss (probes on
 * an unreliable channel), then upload and download throughput (a reliable channel), each
 * phase bounded in bytes and time by the server's plan, so a slow link sends less. Stores the
 * numbers (POST /api/v1/network-tests) and shows the recommendation the server computed.
 * window.telemedNetworkTest exposes run() and state() for tests and support. No framework.
 */
import { t } from "./i18n.js";

(function () {
  "use strict";
  var root = document.getElementById("precall");
  var setupEl = document.getElementById("precall-setup");
  if (!root || !setupEl) return;
  var $ = function (id) { return document.getElementById(id); };
  var csrf = root.getAttribute("data-csrf");
  var setup = JSON.parse(setupEl.textContent);
  var plan = setup.plan;
  var GATHER_MS = 3000; /* post the offer with the candidates found by then */
  var REPLY_MS = 8000; /* for queued bytes to drain on a slow link, and the reply */
  var MAX_KBPS = 1e7;
  var state = { running: false, phase: "idle", measured: null, stored: null, error: null };

  function status(text) { $("precall-status").textContent = text; }
  function now() { return performance.now(); }
  function round1(x) { return Math.round(x * 10) / 10; }
  function delay(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }

  if (!window.RTCPeerConnection || !window.fetch || !window.Promise) {
    status(t("This browser cannot run the test (no WebRTC)."));
    return;
  }

  /* ---------------------------------------------------------------- connecting */
  function gathered(pc) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise(function (resolve) {
      pc.addEventListener("icegatheringstatechange", function () {
        if (pc.iceGatheringState === "complete") resolve();
      });
      setTimeout(resolve, GATHER_MS);
    });
  }

  function opened(channel, ms) {
    return new Promise(function (resolve) {
      if (channel.readyState === "open") { resolve(true); return; }
      channel.addEventListener("open", function () { resolve(true); });
      setTimeout(function () { resolve(false); }, ms);
    });
  }

  function refusal(response) {
    return response.json().catch(function () { return {}; }).then(function (body) {
      var err = new Error((body.error && body.error.message) || ("HTTP " + response.status));
      err.refused = true; /* the server said no: nothing was measured */
      throw err;
    });
  }

  function connect() {
    var servers = (setup.ice_servers || []).map(function (s) {
      var server = { urls: s.urls };
      if (s.username) server.username = s.username;
      if (s.credential) server.credential = s.credential;
      return server;
    });
    var pc = new RTCPeerConnection({ iceServers: servers });
    var probe = pc.createDataChannel("probe", { ordered: false, maxRetransmits: 0 });
    var bulk = pc.createDataChannel("bulk");
    probe.binaryType = bulk.binaryType = "arraybuffer";
    var link = { pc: pc, probe: probe, bulk: bulk };
    return pc.createOffer()
      .then(function (offer) { return pc.setLocalDescription(offer); })
      .then(function () { return gathered(pc); })
      .then(function () {
        return fetch("/api/v1/network-tests/offer", {
          method: "POST", credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
          body: JSON.stringify({ type: "offer", sdp: pc.localDescription.sdp })
        }).catch(function (err) { err.refused = true; throw err; });
      })
      .then(function (r) { return r.ok ? r.json() : refusal(r); })
      .then(function (answer) { return pc.setRemoteDescription(answer); })
      .then(function () {
        return Promise.all([opened(probe, plan.connect_timeout_ms),
                            opened(bulk, plan.connect_timeout_ms)]);
      })
      .then(function (open) { link.connected = open[0] && open[1]; return link; })
      .catch(function (err) { pc.close(); throw err; });
  }

  /* ---------------------------------------------------------------- round trip and loss */
  function pad(text, size) {
    while (text.length < size) text += ".";
    return text.slice(0, size);
  }

  function probes(link) {
    var sentAt = {}, rtts = [], sent = 0;
    return new Promise(function (resolve) {
      var finished = false;
      function finish() {
        if (finished) return;
        finished = true;
        link.probe.onmessage = null;
        var sorted = rtts.slice().sort(function (a, b) { return a - b; });
        var jitter = 0;
        for (var i = 1; i < rtts.length; i++) jitter += Math.abs(rtts[i] - rtts[i - 1]);
        resolve({
          sent: sent, received: rtts.length,
          rtt: sorted.length ? sorted[Math.floor(sorted.length / 2)] : null,
          jitter: rtts.length > 1 ? jitter / (rtts.length - 1) : (rtts.length ? 0 : null)
        });
      }
      link.probe.onmessage = function (e) {
        var seq = parseInt(String(e.data).slice(1), 10);
        if (sentAt[seq] === undefined) return;
        rtts.push(now() - sentAt[seq]);
        delete sentAt[seq];
        if (sent === plan.probes && rtts.length === sent) finish();
      };
      var timer = setInterval(function () {
        if (sent >= plan.probes || link.probe.readyState !== "open") {
          clearInterval(timer);
          setTimeout(finish, plan.probe_wait_ms);
          return;
        }
        sentAt[sent] = now();
        link.probe.send(pad("p" + sent + " ", plan.probe_bytes));
        sent++;
      }, plan.probe_interval_ms);
    });
  }

  /* ---------------------------------------------------------------- throughput */
  function reply(link, type, ms) {
    return new Promise(function (resolve) {
      var timer = setTimeout(function () { resolve(null); }, ms);
      link.onControl = function (message) {
        if (message.type !== type) return;
        clearTimeout(timer);
        resolve(message);
      };
    });
  }

  function upload(link) {
    var bulk = link.bulk, chunk = new ArrayBuffer(plan.chunk_bytes), sent = 0, t0 = now();
    bulk.bufferedAmountLowThreshold = plan.buffer_bytes / 2;
    return new Promise(function (resolve) {
      var done = false;
      function finish() {
        if (done) return;
        done = true;
        bulk.onbufferedamountlow = null;
        clearTimeout(timer);
        var answered = reply(link, "up-result", REPLY_MS);
        if (bulk.readyState === "open") bulk.send(JSON.stringify({ type: "up-done" }));
        answered.then(function (result) {
          link.bytes += sent;
          if (!result) { resolve(null); return; }
          resolve(result.bytes > 0 ? result.bytes * 8 / Math.max(result.ms, 1) : 0);
        });
      }
      function pump() {
        while (!done && bulk.readyState === "open" && sent < plan.up_max_bytes &&
               now() - t0 < plan.up_max_ms && bulk.bufferedAmount < plan.buffer_bytes) {
          var size = Math.min(plan.chunk_bytes, plan.up_max_bytes - sent);
          bulk.send(size === plan.chunk_bytes ? chunk : chunk.slice(0, size));
          sent += size;
        }
        if (sent >= plan.up_max_bytes || now() - t0 >= plan.up_max_ms || bulk.readyState !== "open") finish();
      }
      var timer = setTimeout(finish, plan.up_max_ms);
      bulk.onbufferedamountlow = pump;
      pump();
    });
  }

  function download(link) {
    var first = null, last = null, firstBytes = 0, bytes = 0;
    link.onData = function (data) {
      var t = now();
      if (first === null) { first = t; firstBytes = data.byteLength; }
      last = t;
      bytes += data.byteLength;
    };
    var answered = reply(link, "down-done", plan.down_max_ms + REPLY_MS);
    link.bulk.send(JSON.stringify({ type: "down" }));
    return answered.then(function () {
      link.onData = null;
      link.bytes += bytes;
      if (first === null) return 0;
      var payload = bytes - firstBytes;
      return payload > 0 ? payload * 8 / Math.max(last - first, 1) : 0;
    });
  }

  /* ---------------------------------------------------------------- the whole test */
  function measure(link) {
    link.bytes = 0;
    link.bulk.onmessage = function (e) {
      if (typeof e.data === "string") {
        var message;
        try { message = JSON.parse(e.data); } catch (err) { return; }
        if (link.onControl) link.onControl(message);
      } else if (link.onData) {
        link.onData(e.data);
      }
    };
    var result = { connected: true };
    state.phase = "probes";
    status(t("Measuring the round trip…"));
    return probes(link).then(function (p) {
      result.probes_sent = p.sent;
      result.probes_received = p.received;
      result.rtt_ms = p.rtt === null ? null : round1(Math.min(p.rtt, 60000));
      result.jitter_ms = p.jitter === null ? null : round1(Math.min(p.jitter, 60000));
      link.bytes += 2 * p.received * plan.probe_bytes;
      if (!p.sent) { result.connected = false; return null; } /* the channel closed at once */
      state.phase = "upload";
      status(t("Measuring the upload…"));
      return upload(link);
    }).then(function (up) {
      if (!result.connected) return result;
      result.up_kbps = up === null ? null : round1(Math.min(up, MAX_KBPS));
      state.phase = "download";
      status(t("Measuring the download…"));
      return download(link);
    }).then(function (down) {
      if (!result.connected) return { connected: false, probes_sent: 0, probes_received: 0 };
      result.down_kbps = round1(Math.min(down, MAX_KBPS));
      return result;
    });
  }

  function store(result) {
    state.phase = "storing";
    return fetch("/api/v1/network-tests", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(result)
    }).then(function (r) { return r.ok ? r.json() : refusal(r); });
  }

  function show(stored, bytes) {
    function num(x, unit, digits) { return x === null ? "–" : x.toFixed(digits || 0) + unit; }
    $("precall-rtt").textContent = stored.connected ? num(stored.rtt_ms, " ms") : t("not reachable");
    $("precall-loss").textContent = num(stored.loss_percent, "%", 1);
    $("precall-up").textContent = num(stored.up_kbps, " kbit/s");
    $("precall-down").textContent = num(stored.down_kbps, " kbit/s");
    var rec = $("precall-recommendation");
    rec.textContent = t(stored.label);
    rec.setAttribute("data-recommendation", stored.recommendation);
    $("precall-bytes").textContent = Math.round(bytes / 1024) + " KB";
    $("precall-result").hidden = false;
  }

  function run() {
    if (state.running) return Promise.resolve(state);
    state = { running: true, phase: "connecting", measured: null, stored: null, error: null };
    $("precall-start").disabled = true;
    status(t("Connecting to the test server…"));
    var link = null;
    return connect().then(function (l) {
      link = l;
      if (!link.connected) return { connected: false, probes_sent: 0, probes_received: 0 };
      return measure(link);
    }).then(function (result) {
      state.measured = result;
      if (link.bulk.readyState === "open") link.bulk.send(JSON.stringify({ type: "bye" }));
      return delay(50).then(function () { link.pc.close(); return store(result); });
    }).then(function (stored) {
      state.stored = stored;
      show(stored, link.bytes || 0);
      status(stored.connected ? t("Done: your link is suited to %(mode)s.", { mode: t(stored.label) })
                              : t("The test server could not be reached: use messages and photos."));
    }).catch(function (err) {
      if (link) link.pc.close();
      state.error = err.message;
      status(t("The test did not run: %(error)s", { error: err.message }));
    }).then(function () {
      state.running = false;
      state.phase = "done";
      $("precall-start").disabled = false;
      return state;
    });
  }

  var start = $("precall-start");
  start.hidden = false;
  start.addEventListener("click", run);
  window.telemedNetworkTest = { run: run, state: function () { return state; } };
})();
