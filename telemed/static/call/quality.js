/* The link's quality from getStats(): shown as good / fair / poor with the round trip and the
 * bitrate received, and reported to the signalling server now and then (it lands on the
 * call's record). stats() is also what tests and support read (window.telemedCall.stats()).
 */
import { t } from "../i18n.js";
export const REPORT_MS = 30000;

export class Quality {
  /* the page's parts: peers, signalling, media, chat; el: the indicator */
  constructor(parts, el) {
    this.parts = parts;
    this.el = el;
    this.last = { framesDecoded: 0, bytesReceived: 0, at: 0 };
  }

  stats() {
    const { peers, signalling, media, chat } = this.parts;
    const list = peers.list();
    const out = { framesDecoded: 0, framesEncoded: 0, bytesReceived: 0, bytesSent: 0, headerBytesSent: 0, rttMs: null,
      packetsLost: 0, packetsReceived: 0, peers: list.length, resumes: signalling.resumes,
      fullReconnects: signalling.fullReconnects, socket: signalling.ws ? signalling.ws.readyState : -1,
      session: signalling.sessionId, connection: peers.connectionState(), mode: media.mode,
      chat: chat.entries.slice() };
    return Promise.all(list.map((peer) => peer.pc.getStats())).then((reports) => {
      reports.forEach((report) => report.forEach((s) => {
        if (s.type === "inbound-rtp") {
          if (s.kind === "video") out.framesDecoded += s.framesDecoded || 0;
          out.bytesReceived += s.bytesReceived || 0;
          out.packetsLost += s.packetsLost || 0;
          out.packetsReceived += s.packetsReceived || 0;
        } else if (s.type === "outbound-rtp") {
          if (s.kind === "video") out.framesEncoded += s.framesEncoded || 0;
          out.bytesSent += s.bytesSent || 0;
          out.headerBytesSent += s.headerBytesSent || 0; /* RTP headers: a thin link carries them too */
        } else if (s.type === "candidate-pair" && s.nominated && s.currentRoundTripTime !== undefined) {
          out.rttMs = s.currentRoundTripTime * 1000;
        }
      }));
      return out;
    });
  }

  update() {
    return this.stats().then((s) => {
      const now = Date.now(), seconds = (now - this.last.at) / 1000;
      const kbps = this.last.at ? Math.max(0, (s.bytesReceived - this.last.bytesReceived) * 8 / 1000 / seconds) : 0;
      const total = s.packetsLost + s.packetsReceived;
      const loss = total ? s.packetsLost / total : 0;
      this.last = { framesDecoded: s.framesDecoded, bytesReceived: s.bytesReceived, at: now, kbps, loss, rtt: s.rttMs };
      let label = "unknown";
      if (s.connection === "connected") {
        label = (s.rttMs !== null && s.rttMs > 400) || loss > 0.05 || kbps < 30 ? "poor" :
          (s.rttMs !== null && s.rttMs > 200) || loss > 0.02 ? "fair" : "good";
      }
      this.el.textContent = t(label) + (s.rttMs !== null ? " · " + Math.round(s.rttMs) + " ms" : "") +
        (kbps ? " · " + Math.round(kbps) + " kbit/s" : "");
      this.el.className = "quality quality-" + label;
    });
  }

  report() {
    const last = this.last;
    if (!last.at || !this.parts.peers.ids().length) return;
    const report = { kbps_in: Math.round(last.kbps || 0), loss: Number((last.loss || 0).toFixed(4)) };
    if (last.rtt !== null && last.rtt !== undefined) report.rtt_ms = Math.round(last.rtt);
    this.parts.signalling.send({ type: "quality", stats: report });
  }
}
