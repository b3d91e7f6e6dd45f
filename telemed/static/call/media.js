/* The camera and microphone, and what is sent: "normal" video, "low" (about 200 kbit/s at
 * half resolution) or "audio-only" (video encoding off), applied to every sender with
 * RTCRtpSender.setParameters so that nothing is renegotiated. The starting mode comes from
 * the pre-call test when there was one.
 */
import { t } from "../i18n.js";
const LOW_BPS = 200000;
const SIZE = { width: 640, height: 360 };

export class Media {
  /* camera, microphone: the <select>s; preview: the local <video> */
  constructor(mode, camera, microphone, preview) {
    this.mode = mode;
    this.camera = camera;
    this.microphone = microphone;
    this.preview = preview;
    this.local = null;
  }

  /** Camera and microphone, or the microphone alone (then audio-only, and audioOnly() is
      called) when there is no camera or it is refused. */
  open(audioOnly) {
    return navigator.mediaDevices.getUserMedia({ audio: true, video: SIZE })
      .catch(() => {
        this.mode = "audio-only";
        audioOnly();
        return navigator.mediaDevices.getUserMedia({ audio: true, video: false });
      })
      .then((stream) => {
        this.show(stream);
        this.local.getVideoTracks().forEach((t) => { t.enabled = this.mode !== "audio-only"; });
      });
  }

  show(stream) {
    this.local = stream;
    this.preview.srcObject = stream;
  }

  stop() {
    if (this.local) this.local.getTracks().forEach((t) => t.stop());
  }

  constraints() {
    const cam = this.camera.value, mic = this.microphone.value;
    return {
      audio: mic ? { deviceId: { exact: mic } } : true,
      video: this.mode === "audio-only" ? false : (cam ? Object.assign({ deviceId: { exact: cam } }, SIZE) : SIZE)
    };
  }

  listDevices() {
    return navigator.mediaDevices.enumerateDevices().then((devices) => {
      [["videoinput", this.camera, t("camera")], ["audioinput", this.microphone, t("microphone")]].forEach(([kind, select, name]) => {
        const current = select.value;
        select.textContent = "";
        devices.filter((d) => d.kind === kind).forEach((d, i) => {
          const o = document.createElement("option");
          o.value = d.deviceId;
          o.textContent = d.label || name + " " + (i + 1);
          select.appendChild(o);
        });
        if (current) select.value = current;
      });
    });
  }

  /** The devices chosen in the selects, swapped into every peer's senders. */
  switchDevice(peers) {
    return navigator.mediaDevices.getUserMedia(this.constraints()).then((stream) => {
      stream.getTracks().forEach((track) => {
        peers.forEach((peer) => peer.pc.getSenders().forEach((s) => {
          if (s.track && s.track.kind === track.kind) s.replaceTrack(track);
        }));
      });
      this.stop();
      this.show(stream);
    });
  }

  applyProfile(peer) {
    peer.pc.getSenders().forEach((sender) => {
      if (!sender.track || sender.track.kind !== "video") return;
      const params = sender.getParameters();
      if (!params.encodings || !params.encodings.length) params.encodings = [{}];
      const enc = params.encodings[0];
      enc.active = this.mode !== "audio-only";
      if (this.mode === "low") { enc.maxBitrate = LOW_BPS; enc.scaleResolutionDownBy = 2; }
      else { delete enc.maxBitrate; enc.scaleResolutionDownBy = 1; }
      sender.setParameters(params).catch((err) => console.warn("setParameters", err));
    });
  }

  setProfile(mode, peers) {
    this.mode = mode;
    peers.forEach((peer) => this.applyProfile(peer));
    if (this.local) this.local.getVideoTracks().forEach((t) => { t.enabled = mode !== "audio-only"; });
  }
}
