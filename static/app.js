// The rehearsal page: start screen -> live screen -> end screen. Speaks only the public
// contract (docs/protocol.md). Server text is always set with textContent.

import {
  artefactUrl,
  CoachError,
  createSession,
  endSession,
  getReport,
  getSession,
} from "./api.js";
import { LiveChart } from "./chart.js";
import { applyLanguage, clock, cueTitleKey, initialLanguage, language, t } from "./i18n.js";
import { takeNextTake } from "./next-take.js";
import { WebRTCTransport, WebSocketTransport } from "./transport.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const FORCED_TRANSPORT = params.get("transport"); // "ws" forces the WebSocket fallback
const CAPTURE_FPS = Number(params.get("fps")) || 12;
const POLL_MS = 1000;
const REPORT_RETRIES = 20;
const SCORE_KEYS = ["overall", "eye_contact", "posture", "gestures", "voice"];
const BADGE_FADE_MS = 400;

// Default cue thresholds (Settings) the posture indicator mirrors before a cue has fired.
const SHOULDER_TILT_MAX = 8;
const HEAD_TILT_MAX = 12;

const ui = {
  screen: "start",
  session: null, // the POST /api/sessions answer
  starting: false, // a start is under way (camera, session): a second one waits for it
  stream: null,
  transport: null,
  transportNote: "", // i18n key of the notice about the transport, if any
  startedAt: 0, // performance.now() when media started flowing
  timer: 0,
  ending: false,
  pollTimer: 0,
  activeCues: new Map(), // cue -> badge element
  eye: "unknown",
  posture: "unknown",
  eyeScore: null,
  framesSeen: 0,
  endState: "finalizing",
  final: null, // GET /api/sessions/{id} once completed
  report: null, // the report JSON once it could be read
  polling: false,
  errorKey: "",
  errorDetail: "",
};

const chart = new LiveChart(
  $("chart"),
  [
    { key: "eye", colorVar: "--c-eye" },
    { key: "posture", colorVar: "--c-posture" },
    { key: "gesture", colorVar: "--c-gesture" },
    { key: "voice", colorVar: "--c-voice" },
  ],
  60,
);

// --- screens, language, messages ------------------------------------------------------------

function showScreen(name, { focus = true } = {}) {
  ui.screen = name;
  for (const s of ["start", "live", "end"]) $(`screen-${s}`).hidden = s !== name;
  document.body.dataset.screen = name;
  // Move focus to the new screen's heading so keyboard and screen-reader users follow along.
  if (focus) $(`${name}-heading`).focus({ preventScroll: true });
}

function setLanguage(lang) {
  applyLanguage(lang);
  for (const radio of document.querySelectorAll('input[name="language"]')) {
    radio.checked = radio.value === language();
  }
  renderDynamic();
}

/** Re-render every text that depends on state, e.g. after a language switch. */
function renderDynamic() {
  renderIndicators();
  renderTransportBadge();
  renderNotice();
  renderError();
  renderEndState();
  if (ui.screen === "end") renderScores();
  for (const badge of ui.activeCues.values()) {
    badge.querySelector(".cue-name").textContent = t(badge.dataset.titleKey);
  }
  $("start-button").textContent = t(ui.session && ui.screen === "start" ? "start.starting" : "start.button");
  $("end-button").textContent = t(ui.ending ? "live.ending" : "live.end");
}

function showError(key, detail = "") {
  ui.errorKey = key;
  ui.errorDetail = detail;
  renderError();
  $("error-banner").focus?.();
}

function clearError() {
  ui.errorKey = "";
  ui.errorDetail = "";
  renderError();
}

function renderError() {
  $("error-banner").hidden = !ui.errorKey;
  if (!ui.errorKey) return;
  const text = t(ui.errorKey);
  $("error-text").textContent = ui.errorDetail ? `${text} ${ui.errorDetail}` : text;
}

function errorKeyFor(err) {
  if (err instanceof CoachError) {
    return {
      unreachable: "error.unreachable",
      expired: "error.expired",
      busy: "error.busy",
      server: "error.server",
    }[err.kind];
  }
  return "error.server";
}

function showApiError(err) {
  const key = errorKeyFor(err);
  // The server's own words only where ours are generic.
  showError(key, key === "error.server" ? String(err.message || err) : "");
}

function setNotice(key) {
  ui.transportNote = key;
  renderNotice();
}

function renderNotice() {
  $("notice-banner").hidden = !ui.transportNote;
  if (ui.transportNote) $("notice-text").textContent = t(ui.transportNote);
}

function renderTransportBadge() {
  const badge = $("transport-badge");
  const kind = ui.transport?.kind;
  badge.hidden = !kind || ui.screen !== "live";
  if (kind) badge.textContent = t(kind === "webrtc" ? "live.transport.webrtc" : "live.transport.ws");
  document.body.dataset.transport = kind ?? "";
  // how the camera reaches the server: over the WebSocket "vp9" (WebCodecs) or "jpeg"; over
  // WebRTC the codec the answer chose ("vp9": recorded as the browser sent it)
  document.body.dataset.video = ui.transport?.videoCodec ?? "";
}

// --- start ---------------------------------------------------------------------------------

async function openCamera() {
  if (!navigator.mediaDevices?.getUserMedia) throw Object.assign(new Error(), { name: "Insecure" });
  const video = {
    width: { ideal: 640 },
    height: { ideal: 480 },
    frameRate: { ideal: 15, max: 30 },
    facingMode: "user",
  };
  try {
    return await navigator.mediaDevices.getUserMedia({
      video,
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true },
    });
  } catch (err) {
    // No microphone, but a camera: rehearse without voice coaching rather than not at all.
    if (err.name === "NotFoundError" || err.name === "OverconstrainedError") {
      const stream = await navigator.mediaDevices.getUserMedia({ video });
      setNotice("live.no_mic");
      return stream;
    }
    throw err;
  }
}

function cameraErrorKey(err) {
  switch (err?.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "error.camera_denied";
    case "NotFoundError":
    case "OverconstrainedError":
      return "error.camera_missing";
    case "NotReadableError":
    case "AbortError":
      return "error.camera_busy";
    case "Insecure":
      return "error.camera_insecure";
    default:
      return "error.camera_denied";
  }
}

async function onStart(event) {
  event.preventDefault();
  // "Start next take" submits the form by script, even with the button disabled: a double
  // click must not start two takes (the first one's camera left running).
  if (ui.session || ui.starting) return;
  ui.starting = true;
  try {
    await startRehearsal();
  } finally {
    ui.starting = false;
  }
}

async function startRehearsal() {
  const pitch = takeNextTake(); // "Next take" in My pitches: a take of that pitch
  clearError();
  setNotice("");
  const button = $("start-button");
  button.disabled = true;
  button.textContent = t("start.starting");
  const title = $("title").value.trim();

  // The camera first: a refusal should not leave a session behind on the server.
  try {
    ui.stream = await openCamera();
  } catch (err) {
    button.disabled = false;
    button.textContent = t("start.button");
    showError(cameraErrorKey(err));
    return;
  }
  try {
    ui.session = await createSession(pitch ? { pitch } : { title, language: language() });
    if (pitch) ui.session.title = pitch.title;
  } catch (err) {
    stopCamera();
    button.disabled = false;
    button.textContent = t("start.button");
    showApiError(err);
    return;
  }
  resetLive();
  const preview = $("preview");
  preview.srcObject = ui.stream;
  showScreen("live");
  try {
    await preview.play();
  } catch {
    // autoplay of a muted stream is allowed; if not, the frames still flow to the server
  }
  await connect();
  button.disabled = false;
  button.textContent = t("start.button");
}

function resetLive() {
  ui.ending = false;
  ui.final = null;
  ui.endState = "finalizing";
  ui.eye = "unknown";
  ui.posture = "unknown";
  ui.eyeScore = null;
  ui.framesSeen = 0;
  ui.activeCues.clear();
  $("cue-badges").replaceChildren();
  $("critique-feed").replaceChildren();
  $("feed-empty").hidden = false;
  $("frames").textContent = "0";
  $("latency").textContent = "–";
  $("timer").textContent = "0:00";
  $("end-button").disabled = false;
  $("connecting").hidden = false;
  clearTimeout(ui.calibrateTimer);
  delete document.body.dataset.calibration;
  ui.startedAt = 0;
  showCalibration("live.calibrate", false);
  chart.reset();
  renderIndicators();
}

// --- transport -------------------------------------------------------------------------------

async function connect() {
  const common = {
    session: ui.session,
    stream: ui.stream,
    onEvent: onEvent,
    onStatus: onTransportStatus,
  };
  if (FORCED_TRANSPORT !== "ws" && "RTCPeerConnection" in window) {
    const rtc = new WebRTCTransport(common);
    try {
      await rtc.start();
      if (endedMeanwhile(rtc, common.session)) return;
      ui.transport = rtc;
      mediaStarted();
      return;
    } catch (err) {
      if (endedMeanwhile(rtc, common.session)) return;
      if (err instanceof CoachError && err.kind === "expired") {
        failLive(err);
        return;
      }
      console.warn("WebRTC failed, falling back to the WebSocket:", err);
      setNotice("live.transport.fallback");
    }
  }
  await connectWebSocket(common);
}

/** The presenter ended the rehearsal (or ended it and started another) while `transport`
 * was connecting `session`: the end screen has it from here (the server ended the session, so
 * the connection is refused or pointless). */
function endedMeanwhile(transport, session) {
  if (!ui.ending && ui.session === session) return false;
  transport.close();
  return true;
}

/** The WebSocket, to start with or (`midSession`) after WebRTC went: a session that was live
 * is not dropped when the server cannot be reached then; the end screen waits for its report
 * (the server finalises it after the reconnect grace, or recovers it after a restart). */
async function connectWebSocket(common, midSession = false) {
  const ws = new WebSocketTransport({ ...common, video: $("preview"), fps: CAPTURE_FPS });
  try {
    await ws.start();
  } catch (err) {
    if (endedMeanwhile(ws, common.session)) return;
    console.warn("WebSocket failed:", err);
    ws.close();
    if (midSession && !(err instanceof CoachError && err.kind === "expired")) {
      // No transport left: end it (the server ends it where the media stopped); if the server
      // is away, the end screen waits for it to finalise or recover the session.
      showError("error.connection_lost");
      beginEnd(true);
      return;
    }
    // Tell a dead session from a dead server.
    try {
      await getSession(ui.session.session_id, ui.session.token);
      showError("error.connection_lost");
    } catch (apiErr) {
      showApiError(apiErr);
    }
    abandonLive();
    return;
  }
  if (endedMeanwhile(ws, common.session)) return;
  ui.transport = ws;
  mediaStarted();
}

// The server learns the presenter's own look at the camera over 3 s from their first look at
// it (docs/protocol.md); `metrics.gaze.calibration` says where that stands. The page asks for
// a look into the lens until the first metrics and while it is `learning`, says so when it is
// `skipped` (the defaults for the session), and shows nothing once `learnt` or `off`.
const CALIBRATE_SKIPPED_SHOWN_MS = 6000;

function showCalibration(key, visible) {
  const text = $("calibrate-text");
  text.dataset.i18n = key;
  text.textContent = t(key);
  $("calibrate").hidden = !visible;
}

function onCalibration(state) {
  if (state == null || state === document.body.dataset.calibration) return;
  document.body.dataset.calibration = state;
  clearTimeout(ui.calibrateTimer);
  if (state === "learning") {
    showCalibration("live.calibrate", true);
  } else if (state === "skipped") {
    showCalibration("live.calibrate.skipped", true);
    ui.calibrateTimer = setTimeout(() => { $("calibrate").hidden = true; }, CALIBRATE_SKIPPED_SHOWN_MS);
  } else {
    showCalibration("live.calibrate", false);
  }
}

function mediaStarted() {
  $("connecting").hidden = true;
  // Once per session: a fallback to the WebSocket mid-session comes here again, and neither
  // the prompt nor the clock start over (the metrics drive the prompt).
  if (!ui.startedAt) {
    showCalibration("live.calibrate", true);
    ui.startedAt = performance.now();
  }
  renderTransportBadge();
  clearInterval(ui.timer);
  ui.timer = setInterval(tick, 250);
  tick();
}

async function onTransportStatus(status) {
  if (ui.screen !== "live" || ui.ending) return;
  switch (status.kind) {
    case "reconnecting":
      setNotice("live.reconnecting");
      break;
    case "connected":
      setNotice(ui.transport?.kind === "ws" && FORCED_TRANSPORT !== "ws" ? "live.transport.fallback" : "");
      break;
    case "no_audio":
      setNotice("live.no_mic");
      break;
    case "expired":
      failLive(new CoachError("expired", ""));
      break;
    case "busy":
      failLive(new CoachError("busy", ""));
      break;
    case "ended":
      // The server ended the session (time limit, shutdown): collect what it made.
      beginEnd(false);
      break;
    case "lost":
    case "channel_closed":
      if (ui.transport?.kind === "webrtc") {
        // The session waits a grace period for a reconnect: carry on over the WebSocket.
        ui.transport.close();
        setNotice("live.transport.fallback");
        await connectWebSocket(
          { session: ui.session, stream: ui.stream, onEvent, onStatus: onTransportStatus },
          true,
        );
      } else {
        showError("error.connection_lost");
        beginEnd(false);
      }
      break;
    default:
      break;
  }
}

function failLive(err) {
  showApiError(err);
  abandonLive();
}

/** Back to the start screen after a session that cannot go on. */
function abandonLive() {
  clearInterval(ui.timer);
  clearTimeout(ui.calibrateTimer);
  ui.transport?.close();
  ui.transport = null;
  stopCamera();
  ui.session = null;
  showScreen("start");
  renderDynamic();
}

function stopCamera() {
  for (const track of ui.stream?.getTracks() ?? []) track.stop();
  ui.stream = null;
  $("preview").srcObject = null;
}

// --- live events -----------------------------------------------------------------------------

function elapsed() {
  return ui.startedAt ? (performance.now() - ui.startedAt) / 1000 : 0;
}

function tick() {
  const e = elapsed();
  $("timer").textContent = clock(e);
  $("timer").dateTime = `PT${Math.floor(e)}S`;
  chart.tick(e);
}

function onEvent(event) {
  switch (event.type) {
    case "metrics":
      onMetrics(event);
      break;
    case "voice":
      if (typeof event.level_dbfs === "number") {
        chart.push("voice", elapsed(), (event.level_dbfs + 60) / 60);
      }
      break;
    case "cue":
      onCue(event);
      break;
    case "critique":
      onCritique(event);
      break;
    case "state":
      onState(event);
      break;
    case "report_ready":
      if (ui.screen === "end") pollSession();
      break;
    case "error":
      // Non-fatal by contract: log it for the curious, don't alarm the presenter.
      console.info("coach:", event.code, event.message);
      break;
    default:
      break;
  }
}

function onMetrics(m) {
  const now = elapsed();
  ui.framesSeen += 1;
  $("frames").textContent = String(m.frame ?? ui.framesSeen);
  if (typeof m.latency_ms === "number") $("latency").textContent = `${Math.round(m.latency_ms)} ms`;
  document.body.dataset.metrics = String(ui.framesSeen);

  onCalibration(m.gaze?.calibration);
  const onCamera = m.face ? m.gaze?.on_camera : null;
  if (onCamera == null) {
    ui.eyeScore = null;
  } else {
    const v = onCamera ? 1 : 0;
    ui.eyeScore = ui.eyeScore == null ? v : 0.7 * ui.eyeScore + 0.3 * v;
  }
  chart.push("eye", now, ui.eyeScore);

  const shoulder = m.posture?.shoulder_tilt_deg;
  const head = m.posture?.head_tilt_deg;
  let postureScore = null;
  if (shoulder != null || head != null) {
    const worst = Math.max(
      shoulder != null ? Math.abs(shoulder) / (2 * SHOULDER_TILT_MAX) : 0,
      head != null ? Math.abs(head) / (2 * HEAD_TILT_MAX) : 0,
    );
    postureScore = 1 - Math.min(1, worst);
  }
  chart.push("posture", now, postureScore);
  const activity = m.gesture?.activity;
  chart.push("gesture", now, activity == null ? null : activity / 3);

  // Indicators: debounced cues decide "bad"; the frame decides whether it can be judged.
  ui.eye = !m.face ? "unknown" : ui.activeCues.has("eye_contact") ? "off" : "on";
  const postureVisible = shoulder != null || head != null;
  ui.posture = !postureVisible
    ? "unknown"
    : ui.activeCues.has("posture") || ui.activeCues.has("head_tilt") ? "off" : "on";
  renderIndicators();
}

function renderIndicators() {
  const eye = $("eye-indicator");
  eye.dataset.state = ui.eye;
  $("eye-value").textContent = t({ on: "live.eye.on", off: "live.eye.off", unknown: "live.eye.unknown" }[ui.eye]);
  const posture = $("posture-indicator");
  posture.dataset.state = ui.posture;
  $("posture-value").textContent = t(
    { on: "live.posture.ok", off: "live.posture.off", unknown: "live.posture.unknown" }[ui.posture],
  );
}

function onCue(cue) {
  const name = String(cue.cue);
  const list = $("cue-badges");
  if (cue.state === "on") {
    if (ui.activeCues.has(name)) return;
    const badge = document.createElement("li");
    badge.className = "cue-badge";
    badge.dataset.cue = name;
    badge.dataset.severity = cue.severity === "warn" ? "warn" : "info";
    const title = document.createElement("span");
    title.className = "cue-name";
    badge.dataset.titleKey = cueTitleKey(cue);
    title.textContent = t(badge.dataset.titleKey);
    const message = document.createElement("span");
    message.className = "cue-message";
    message.textContent = String(cue.message ?? "");
    badge.append(title, message);
    list.append(badge);
    ui.activeCues.set(name, badge);
    // Next frame, so the transition from the initial style runs: the badge fades in.
    requestAnimationFrame(() => badge.classList.add("shown"));
    $("cue-announcer").textContent = String(cue.message || t(badge.dataset.titleKey));
  } else {
    const badge = ui.activeCues.get(name);
    if (!badge) return;
    ui.activeCues.delete(name);
    badge.classList.remove("shown");
    badge.classList.add("leaving");
    setTimeout(() => badge.remove(), BADGE_FADE_MS);
  }
  if (name === "eye_contact" && ui.eye !== "unknown") ui.eye = cue.state === "on" ? "off" : "on";
  if ((name === "posture" || name === "head_tilt") && ui.posture !== "unknown") {
    ui.posture = ui.activeCues.has("posture") || ui.activeCues.has("head_tilt") ? "off" : "on";
  }
  renderIndicators();
}

function onCritique(c) {
  $("feed-empty").hidden = true;
  const entry = document.createElement("li");
  entry.className = "critique";
  entry.dataset.source = c.source === "vlm" ? "vlm" : "rules";
  const head = document.createElement("div");
  head.className = "critique-head";
  const source = document.createElement("span");
  source.className = "critique-source";
  source.dataset.i18n = c.source === "vlm" ? "critique.source.vlm" : "critique.source.rules";
  source.textContent = t(source.dataset.i18n);
  const when = document.createElement("span");
  when.className = "critique-time";
  when.textContent = `${clock(c.t_start ?? 0)}–${clock(c.t_end ?? c.t ?? 0)}`;
  head.append(source, when);
  entry.append(head);
  for (const item of Array.isArray(c.items) ? c.items : []) {
    const row = document.createElement("div");
    row.className = "critique-item";
    row.dataset.severity = item.severity === "warn" ? "warn" : "info";
    if (item.category) {
      const category = document.createElement("span");
      category.className = "critique-category";
      // A category the page knows is said in the page's language; another, as sent.
      const key = `critique.category.${item.category}`;
      category.dataset.category = String(item.category);
      category.textContent = t(key) === key ? String(item.category) : t(key);
      row.append(category);
    }
    const observation = document.createElement("p");
    observation.className = "critique-observation";
    observation.textContent = String(item.observation ?? "");
    row.append(observation);
    if (item.suggestion) {
      const suggestion = document.createElement("p");
      suggestion.className = "critique-suggestion";
      const label = document.createElement("strong");
      label.dataset.i18n = "critique.suggestion";
      label.textContent = t("critique.suggestion");
      suggestion.append(label, " ", String(item.suggestion));
      row.append(suggestion);
    }
    entry.append(row);
  }
  $("critique-feed").prepend(entry);
}

function onState(event) {
  if (event.state === "live" || event.state === "created") return;
  if (event.state === "failed") {
    ui.endState = "failed";
    if (ui.screen === "live") beginEnd(false);
    else renderEndState();
    return;
  }
  if (ui.screen === "live" && !ui.ending) {
    beginEnd(false); // ended by the server (time limit, disconnect grace)
  } else if (ui.screen === "end") {
    pollSession();
  }
}

// --- the end -------------------------------------------------------------------------------

async function beginEnd(askServer = true) {
  if (ui.ending || !ui.session) return;
  ui.ending = true;
  setNotice(""); // reconnecting, fallback: about a connection that is over now
  $("end-button").disabled = true;
  $("end-button").textContent = t("live.ending");
  ui.transport?.stopMedia();
  clearInterval(ui.timer);
  clearTimeout(ui.calibrateTimer);
  const duration = elapsed();
  if (askServer) {
    try {
      await endSession(ui.session.session_id, ui.session.token);
    } catch (err) {
      // Ended already (or gone): the polling below says which.
      if (!(err instanceof CoachError && err.kind === "expired")) showApiError(err);
    }
  }
  stopCamera();
  $("end-title").textContent = ui.session.title ?? $("title").value.trim();
  $("end-duration").textContent = `${t("end.duration")} ${clock(duration)}`;
  $("downloads").hidden = true;
  $("report-frame").hidden = true;
  $("finalizing").hidden = false;
  $("finalizing-progress").hidden = false;
  showScreen("end");
  renderDynamic();
  pollSession();
}

async function pollSession() {
  clearTimeout(ui.pollTimer);
  if (!ui.session || ui.screen !== "end" || ui.final || ui.polling) return;
  ui.polling = true;
  try {
    await pollOnce();
  } finally {
    ui.polling = false;
  }
}

async function pollOnce() {
  let info;
  try {
    info = await getSession(ui.session.session_id, ui.session.token);
  } catch (err) {
    if (err instanceof CoachError && err.kind === "expired") {
      showApiError(err);
      return;
    }
    ui.pollTimer = setTimeout(pollSession, POLL_MS * 2); // server busy or restarting
    return;
  }
  ui.endState = info.state;
  if (info.state === "completed" || info.state === "failed") {
    ui.final = info;
    renderEndState();
    await showResults(info);
  } else {
    ui.pollTimer = setTimeout(pollSession, POLL_MS);
  }
  renderEndState();
}

function renderEndState() {
  if (ui.screen !== "end") return;
  const key =
    ui.endState === "completed" ? "end.state.completed"
    : ui.endState === "failed" ? "end.state.failed"
    : "end.state.finalizing";
  $("end-state").textContent = t(key);
  $("end-state").dataset.state = ui.endState;
  // the server's length, rounded to the second as the report says it
  if (ui.final) $("end-duration").textContent = `${t("end.duration")} ${clock(Math.round(ui.final.duration_s ?? 0))}`;
}

/** The report JSON; `completed` can be announced a moment before the report is served. */
async function fetchReport(id, token) {
  for (let attempt = 0; attempt < REPORT_RETRIES; attempt += 1) {
    try {
      return await getReport(id, token);
    } catch (err) {
      if (!(err instanceof CoachError) || err.status !== 409) return null;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  return null;
}

async function showResults(info) {
  const { session_id: id, token } = ui.session;
  if (info.state === "completed") clearError(); // a lost connection's error: its report came
  ui.transport?.close();
  ui.transport = null;
  const report = info.state === "completed" && info.report_url ? await fetchReport(id, token) : null;
  ui.report = report;
  $("finalizing-progress").hidden = true;
  const hasReport = Boolean(report);
  const hasRecording = Boolean(info.recording_url);
  const links = [
    ["open-report", hasReport, artefactUrl(id, token, "report.html")],
    ["download-html", hasReport, artefactUrl(id, token, "report.html")],
    ["download-json", hasReport, artefactUrl(id, token, "report")],
    ["download-recording", hasRecording, artefactUrl(id, token, "recording.webm")],
  ];
  for (const [elementId, available, href] of links) {
    const link = $(elementId);
    link.hidden = !available;
    link.href = href;
  }
  const base = `rehearsal-${id.slice(0, 8)}`;
  $("download-html").download = `${base}-report.html`;
  $("download-json").download = `${base}-report.json`;
  $("download-recording").download = `${base}.webm`;
  $("downloads").hidden = false;
  renderScores();
  const frame = $("report-frame");
  if (hasReport) {
    frame.src = artefactUrl(id, token, "report.html");
    frame.hidden = false;
  }
  renderTransportBadge();
  $("open-report").hidden ? $("new-button").focus() : $("open-report").focus();
}

function renderScores() {
  const list = $("scores");
  const report = ui.report;
  list.hidden = !report;
  if (!report) return;
  list.replaceChildren(
    ...SCORE_KEYS.map((key) => {
      const value = report.scores?.[key];
      const item = document.createElement("li");
      item.className = "score";
      item.dataset.score = key;
      const number = document.createElement("span");
      number.className = "score-value";
      number.textContent = typeof value === "number" ? String(Math.round(value)) : "–";
      const label = document.createElement("span");
      label.className = "score-label";
      label.textContent = t(`score.${key}`);
      item.append(number, label);
      return item;
    }),
  );
}

function newRehearsal() {
  clearTimeout(ui.pollTimer);
  ui.transport?.close();
  ui.transport = null;
  ui.session = null;
  ui.final = null;
  ui.report = null;
  ui.ending = false;
  $("report-frame").removeAttribute("src");
  $("report-frame").hidden = true;
  setNotice("");
  clearError();
  showScreen("start");
  renderDynamic();
}

// --- wiring --------------------------------------------------------------------------------

function init() {
  setLanguage(initialLanguage());
  for (const radio of document.querySelectorAll('input[name="language"]')) {
    radio.addEventListener("change", () => setLanguage(radio.value));
  }
  $("start-form").addEventListener("submit", onStart);
  $("end-button").addEventListener("click", () => beginEnd(true));
  $("new-button").addEventListener("click", newRehearsal);
  $("error-dismiss").addEventListener("click", clearError);
  // Leaving mid-rehearsal ends the session at once instead of after the reconnect grace.
  window.addEventListener("pagehide", () => {
    if (ui.screen === "live" && ui.session && !ui.ending) {
      const { session_id: id, token } = ui.session;
      navigator.sendBeacon(artefactUrl(id, token, "end"));
    }
  });
  window.addEventListener("resize", () => chart.schedule());
  showScreen("start", { focus: false });
  document.body.dataset.ready = "true";
}

init();
