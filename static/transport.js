// The two ways media reaches the coach (contract: "Live media"). Both deliver the session's
// events to `onEvent` and report trouble to `onStatus`; the page picks WebRTC and falls back
// to the WebSocket when WebRTC cannot connect.

import { CoachError, postOffer } from "./api.js";
import { Pcm16kResampler } from "./pcm.js";

const ICE_GATHER_TIMEOUT_MS = 5000;
const WEBRTC_CONNECT_TIMEOUT_MS = 10000;
const WS_OPEN_TIMEOUT_MS = 8000;
const WS_MAX_BUFFERED_BYTES = 1024 * 1024; // skip a video frame rather than queue behind it
const WS_RECONNECT_ATTEMPTS = 5;
const AUDIO_MAGIC = new Uint8Array([0x41, 0x55, 0x44, 0x31]); // "AUD1"
const AUDIO_SEND_SAMPLES = 1600; // 100 ms at 16 kHz a message
// The camera as VP9 the browser encodes itself (WebCodecs), where it can: the server then
// records the frames as they came instead of encoding the video again, and a frame is ~8 KB
// instead of a ~50 KB JPEG. Contract extension: docs/protocol.md.
const VP9_MAGIC = new Uint8Array([0x56, 0x50, 0x39, 0x31]); // "VP91"
const VP9_CODEC = "vp09.00.10.08"; // profile 0, level 1, 8-bit: what the server takes
const VP9_KEYFRAME_EVERY_S = 2;
// WebRTC's camera in two temporal layers: Chromium then sends every other frame as one no
// later frame depends on (error resilient, refreshing no reference), which a busy server
// leaves undecoded when it would not analyse its picture anyway (it still records it). Its
// WebCodecs encoder does not (its upper layer refreshes a reference of its own), so the
// VP91 path keeps one layer. Where the browser refuses two layers, one.
const RTC_VP9_SCALABILITY = "L1T2";
const VP9_MAX_QUEUE = 2; // frames waiting in the encoder; more and the next frame is skipped

// Server error codes that mean the session itself is gone, not that WebRTC is unavailable.
const SESSION_GONE_CODES = new Set([
  "token_missing", "token_invalid", "session_not_found", "session_ended", "session_expired",
  "session_not_live",
]);

function parseEvent(text) {
  try {
    const event = JSON.parse(text);
    return event && typeof event === "object" && typeof event.type === "string" ? event : null;
  } catch {
    return null;
  }
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Resolves once ICE gathering is complete (non-trickle: the offer carries every candidate). */
function iceGatheringComplete(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const check = () => {
      if (pc.iceGatheringState === "complete") {
        pc.removeEventListener("icegatheringstatechange", check);
        resolve();
      }
    };
    pc.addEventListener("icegatheringstatechange", check);
    // Host candidates are all a LAN or loopback needs; don't wait forever on a slow STUN.
    setTimeout(resolve, ICE_GATHER_TIMEOUT_MS);
  });
}

/** The camera's codec an answer chose ("vp9", "vp8", ...): its video section's first one. */
function answeredVideoCodec(sdp) {
  const section = sdp.split(/\r?\nm=/).find((m) => m.startsWith("video "));
  const first = section?.split(/\r?\n/, 1)[0].split(" ")[3];
  const match = first && section.match(new RegExp(`a=rtpmap:${first} ([^/\\s]+)/`));
  return match ? match[1].toLowerCase() : null;
}

export class WebRTCTransport {
  kind = "webrtc";

  /**
   * @param {{session: object, stream: MediaStream, onEvent: Function, onStatus: Function}} o
   */
  constructor({ session, stream, onEvent, onStatus }) {
    this.session = session;
    this.stream = stream;
    this.onEvent = onEvent;
    this.onStatus = onStatus;
    this.pc = null;
    this.channel = null;
    this.stopped = false;
    this.connected = false;
    this.videoCodec = null;
  }

  async start() {
    const iceServers = (this.session.ice_servers ?? []).map((url) =>
      typeof url === "string" ? { urls: url } : url,
    );
    const pc = new RTCPeerConnection({ iceServers });
    this.pc = pc;
    // The contract: the client creates the `events` channel before the offer.
    const channel = pc.createDataChannel("events", { ordered: true });
    this.channel = channel;
    channel.addEventListener("message", (m) => {
      const event = typeof m.data === "string" ? parseEvent(m.data) : null;
      if (event) this.onEvent(event);
    });
    for (const track of this.stream.getTracks()) {
      if (track.kind === "video") this.addVideo(pc, track);
      else pc.addTrack(track, this.stream);
    }

    const opened = new Promise((resolve) => channel.addEventListener("open", resolve, { once: true }));
    const connected = new Promise((resolve, reject) => {
      pc.addEventListener("connectionstatechange", () => {
        if (pc.connectionState === "connected") resolve();
        if (pc.connectionState === "failed") reject(new Error("ICE connection failed"));
      });
    });

    try {
      await pc.setLocalDescription(await pc.createOffer());
      await iceGatheringComplete(pc);
      let answer;
      try {
        answer = await postOffer(this.session.offer_url, this.session.token, pc.localDescription);
      } catch (err) {
        // A dead session is not a transport problem: say so instead of falling back.
        if (err instanceof CoachError && SESSION_GONE_CODES.has(err.code)) {
          throw new CoachError("expired", err.message, err.status, err.code);
        }
        throw new Error(`offer refused: ${err.status || ""} ${err.message}`);
      }
      await pc.setRemoteDescription(answer);
      this.videoCodec = answeredVideoCodec(answer.sdp);
      await withTimeout(Promise.all([opened, connected]), WEBRTC_CONNECT_TIMEOUT_MS, "WebRTC");
    } catch (err) {
      this.close();
      throw err;
    }
    this.connected = true;
    pc.addEventListener("connectionstatechange", () => {
      if (this.stopped) return;
      if (pc.connectionState === "failed" || pc.connectionState === "closed") {
        this.onStatus({ kind: "lost" });
      } else if (pc.connectionState === "disconnected") {
        this.onStatus({ kind: "reconnecting" });
      } else if (pc.connectionState === "connected") {
        this.onStatus({ kind: "connected" });
      }
    });
    channel.addEventListener("close", () => {
      if (!this.stopped) this.onStatus({ kind: "channel_closed" });
    });
  }

  /**
   * The camera, offered as VP9 (profile 0) first where the browser can send it: the server
   * then records the browser's own frames instead of decoding and encoding them again. One
   * spatial layer (the server keeps only the base layer of SVC), two temporal layers
   * (RTC_VP9_SCALABILITY; one where refused). VP8 and the rest stay in the offer for a server
   * without VP9.
   */
  addVideo(pc, track) {
    let transceiver;
    for (const scalabilityMode of [RTC_VP9_SCALABILITY, "L1T1"]) {
      try {
        transceiver = pc.addTransceiver(track, {
          streams: [this.stream],
          sendEncodings: [{ scalabilityMode }],
        });
        break;
      } catch {
        // not this mode: the next, then the browser's default
      }
    }
    transceiver ??= pc.addTransceiver(track, { streams: [this.stream] });
    const isVp9 = (c) => /^video\/vp9$/i.test(c.mimeType) && !/profile-id=[1-9]/.test(c.sdpFmtpLine ?? "");
    if (!transceiver.setCodecPreferences) return;
    // The specification first took the receiver's capabilities here, later the sender's too:
    // browsers differ, so the receiver's list is tried first, then the sender's.
    for (const side of [globalThis.RTCRtpReceiver, globalThis.RTCRtpSender]) {
      const codecs = side?.getCapabilities?.("video")?.codecs ?? [];
      if (!codecs.some(isVp9)) continue;
      try {
        transceiver.setCodecPreferences([...codecs.filter(isVp9), ...codecs.filter((c) => !isVp9(c))]);
        return;
      } catch {
        // this list is refused: the next, or the browser's default order (VP8 first)
      }
    }
  }

  /** Stop sending media; keep the data channel so the finalising events still arrive. */
  stopMedia() {
    this.stopped = true;
    if (!this.pc) return;
    for (const sender of this.pc.getSenders()) {
      try {
        sender.track?.stop();
      } catch {
        // already stopped
      }
    }
  }

  close() {
    this.stopped = true;
    try {
      this.channel?.close();
      this.pc?.close();
    } catch {
      // closing twice is fine
    }
  }
}

export class WebSocketTransport {
  kind = "ws";

  /**
   * @param {{session: object, stream: MediaStream, video: HTMLVideoElement, fps: number,
   *          onEvent: Function, onStatus: Function}} o
   */
  constructor({ session, stream, video, fps, onEvent, onStatus }) {
    this.session = session;
    this.stream = stream;
    this.video = video;
    this.fps = Math.min(30, Math.max(1, fps || 12));
    this.onEvent = onEvent;
    this.onStatus = onStatus;
    this.ws = null;
    this.lastSeq = 0;
    this.sending = false;
    this.closing = false;
    this.attempts = 0;
    this.frameTimer = null;
    this.encoding = false;
    this.canvas = document.createElement("canvas");
    this.audio = null;
    this.framesSent = 0;
    this.framesSkipped = 0;
    // "vp9" once the encoder is configured, "jpeg" where WebCodecs cannot encode VP9; fixed
    // for the session (the server takes one kind of video a session).
    this.videoCodec = null;
    this.vp9 = null; // the VideoEncoder and the size it was configured for
    this.vp9NeedKey = true; // after a chunk that did not reach the server
    this.vp9FramesSinceKey = 0;
  }

  socketUrl() {
    // Same origin as the page (see postOffer); ws_url supplies path and token.
    const given = new URL(this.session.ws_url, location.href);
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const url = new URL(`${scheme}//${location.host}${given.pathname}${given.search}`);
    if (this.lastSeq) url.searchParams.set("after_seq", String(this.lastSeq));
    return url.toString();
  }

  connect() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.socketUrl());
      ws.binaryType = "arraybuffer";
      let opened = false;
      const timer = setTimeout(() => {
        if (!opened) {
          ws.close();
          reject(new Error("WebSocket did not open"));
        }
      }, WS_OPEN_TIMEOUT_MS);
      ws.addEventListener("open", () => {
        opened = true;
        clearTimeout(timer);
        this.ws = ws;
        this.attempts = 0;
        resolve();
      });
      ws.addEventListener("message", (m) => {
        if (typeof m.data !== "string") return;
        const event = parseEvent(m.data);
        if (!event || event.type === "pong") return;
        if (typeof event.seq === "number") {
          if (event.seq <= this.lastSeq) return; // replayed after a reconnect
          this.lastSeq = event.seq;
        }
        this.onEvent(event);
      });
      ws.addEventListener("close", (e) => {
        clearTimeout(timer);
        if (!opened) {
          reject(new Error(`WebSocket closed before opening (${e.code})`));
          return;
        }
        this.onClose(e);
      });
    });
  }

  async onClose(e) {
    this.ws = null;
    if (e.code === 1008 || e.code === 4404) {
      this.onStatus({ kind: "expired" });
      return;
    }
    if (e.code === 1013) {
      // The first frame met the server's limit (too many live sessions, or the live ones at
      // their least analysis): the session was never started, so say so rather than retry.
      this.onStatus({ kind: "busy" });
      return;
    }
    this.vp9NeedKey = true; // what the encoder gave while the socket was down is lost
    if (e.code === 1000 || this.closing) {
      // The server closes with 1000 once the session has ended: nothing more will come.
      this.onStatus({ kind: "ended", reason: e.reason });
      return;
    }
    if (this.attempts >= WS_RECONNECT_ATTEMPTS) {
      this.onStatus({ kind: "lost" });
      return;
    }
    this.attempts += 1;
    this.onStatus({ kind: "reconnecting" });
    await new Promise((r) => setTimeout(r, 500 * 2 ** (this.attempts - 1)));
    try {
      await this.connect();
      this.onStatus({ kind: "connected" });
    } catch {
      this.onClose({ code: 1006, reason: "" });
    }
  }

  async start() {
    await this.connect();
    this.videoCodec = (await vp9Supported()) ? "vp9" : "jpeg";
    this.sending = true;
    this.frameTimer = setInterval(() => this.sendFrame(), 1000 / this.fps);
    try {
      this.audio = await startPcmCapture(this.stream, (pcm) => this.sendAudio(pcm));
    } catch (err) {
      // Video coaching still works without audio; the page says the mic is off.
      this.onStatus({ kind: "no_audio", detail: String(err) });
    }
  }

  sendFrame() {
    const ws = this.ws;
    const video = this.video;
    if (!this.sending || !ws || ws.readyState !== WebSocket.OPEN || this.encoding) return;
    if (video.readyState < 2 || !video.videoWidth) return;
    if (ws.bufferedAmount > WS_MAX_BUFFERED_BYTES) {
      this.framesSkipped += 1; // the network is behind: drop this frame, send the next
      return;
    }
    const scale = Math.min(1, 640 / Math.max(video.videoWidth, video.videoHeight));
    const w = Math.round(video.videoWidth * scale);
    const h = Math.round(video.videoHeight * scale);
    if (this.canvas.width !== w) this.canvas.width = w;
    if (this.canvas.height !== h) this.canvas.height = h;
    // The un-mirrored camera image: the preview's mirroring is CSS only.
    this.canvas.getContext("2d").drawImage(video, 0, 0, w, h);
    if (this.videoCodec === "vp9") {
      this.encodeVp9(w, h);
      return;
    }
    this.encoding = true;
    this.canvas.toBlob(
      async (blob) => {
        try {
          if (blob && this.sending && this.ws?.readyState === WebSocket.OPEN) {
            this.ws.send(await blob.arrayBuffer());
            this.framesSent += 1;
          }
        } finally {
          this.encoding = false;
        }
      },
      "image/jpeg",
      0.7,
    );
  }

  encodeVp9(w, h) {
    let encoder = this.vp9?.encoder;
    if (!encoder || encoder.state === "closed" || this.vp9.w !== w || this.vp9.h !== h) {
      encoder = this.makeVp9Encoder(w, h);
    }
    if (encoder.encodeQueueSize > VP9_MAX_QUEUE) {
      this.framesSkipped += 1; // skipped before encoding: the chunks stay a whole chain
      return;
    }
    const keyFrame =
      this.vp9NeedKey || this.vp9FramesSinceKey >= Math.round(VP9_KEYFRAME_EVERY_S * this.fps);
    this.vp9NeedKey = false;
    this.vp9FramesSinceKey = keyFrame ? 1 : this.vp9FramesSinceKey + 1;
    const frame = new VideoFrame(this.canvas, { timestamp: Math.round(performance.now() * 1000) });
    try {
      encoder.encode(frame, { keyFrame });
    } finally {
      frame.close();
    }
  }

  makeVp9Encoder(w, h) {
    try {
      this.vp9?.encoder.close();
    } catch {
      // already closed after an error
    }
    const encoder = new VideoEncoder({
      output: (chunk) => this.sendVp9(chunk),
      error: () => {
        this.vp9NeedKey = true; // the next frame makes a new encoder, starting on a keyframe
      },
    });
    encoder.configure({
      codec: VP9_CODEC,
      width: w,
      height: h,
      bitrate: 1_000_000,
      framerate: this.fps,
      latencyMode: "realtime",
    });
    this.vp9 = { encoder, w, h };
    this.vp9NeedKey = true; // a new encoder starts on a keyframe
    return encoder;
  }

  sendVp9(chunk) {
    const ws = this.ws;
    if (!this.sending || !ws || ws.readyState !== WebSocket.OPEN) {
      this.vp9NeedKey = true; // the server would wait for a keyframe: send one next
      return;
    }
    const message = new Uint8Array(4 + chunk.byteLength);
    message.set(VP9_MAGIC, 0);
    chunk.copyTo(message.subarray(4));
    ws.send(message.buffer);
    this.framesSent += 1;
  }

  sendAudio(pcm) {
    const ws = this.ws;
    if (!this.sending || !ws || ws.readyState !== WebSocket.OPEN) return;
    const message = new Uint8Array(4 + pcm.byteLength);
    message.set(AUDIO_MAGIC, 0);
    message.set(new Uint8Array(pcm.buffer, pcm.byteOffset, pcm.byteLength), 4);
    ws.send(message.buffer);
  }

  /** Stop sending media; keep listening for the finalising events. */
  stopMedia() {
    this.sending = false;
    clearInterval(this.frameTimer);
    try {
      this.vp9?.encoder.close();
    } catch {
      // already closed
    }
    this.audio?.stop();
    this.audio = null;
  }

  close() {
    this.stopMedia();
    this.closing = true;
    this.ws?.close(1000, "client done");
  }
}

/** Whether this browser can encode the VP9 the server takes (WebCodecs, software is fine). */
async function vp9Supported() {
  if (typeof VideoEncoder === "undefined" || typeof VideoFrame === "undefined") return false;
  try {
    const { supported } = await VideoEncoder.isConfigSupported({
      codec: VP9_CODEC,
      width: 640,
      height: 480,
      bitrate: 1_000_000,
      framerate: 15,
      latencyMode: "realtime",
    });
    return Boolean(supported);
  } catch {
    return false;
  }
}

/**
 * Microphone to 16 kHz mono 16-bit PCM, `onChunk(Int16Array)` every 100 ms. An AudioWorklet
 * where there is one (the module is a same-origin file, so a strict CSP allows it), else a
 * ScriptProcessor.
 */
export async function startPcmCapture(stream, onChunk) {
  if (!stream.getAudioTracks().length) throw new Error("no audio track");
  const context = new AudioContext();
  if (context.state === "suspended") await context.resume();
  const source = context.createMediaStreamSource(stream);
  // Nodes only run while pulled by the destination; a muted gain keeps the mic out of the
  // speakers.
  const mute = context.createGain();
  mute.gain.value = 0;
  mute.connect(context.destination);
  let node;
  if (context.audioWorklet) {
    await context.audioWorklet.addModule(new URL("./pcm-worklet.js", import.meta.url));
    node = new AudioWorkletNode(context, "pcm16k", {
      numberOfInputs: 1,
      numberOfOutputs: 1,
      outputChannelCount: [1],
      processorOptions: { chunkSamples: AUDIO_SEND_SAMPLES },
    });
    node.port.onmessage = (m) => onChunk(new Int16Array(m.data));
  } else {
    const resampler = new Pcm16kResampler(context.sampleRate, AUDIO_SEND_SAMPLES, onChunk);
    node = context.createScriptProcessor(4096, 1, 1);
    node.onaudioprocess = (e) => resampler.push(e.inputBuffer.getChannelData(0));
  }
  source.connect(node);
  node.connect(mute);
  return {
    stop() {
      try {
        source.disconnect();
        node.disconnect();
      } catch {
        // already disconnected
      }
      context.close();
    },
  };
}
