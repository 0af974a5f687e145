// Every string the page shows, in Korean and English, in one table. Elements carry
// data-i18n="key" (text), data-i18n-placeholder, data-i18n-aria-label or data-i18n-title;
// applyLanguage() fills them all, so switching language re-renders the whole UI.

export const STRINGS = {
  en: {
    "app.title": "Pitching Live Coach",
    "app.tagline": "Rehearse your talk with live coaching on your own video.",
    "start.heading": "New rehearsal",
    "start.title": "Talk title",
    "start.title.placeholder": "e.g. Series A pitch",
    "start.language": "Language",
    "start.camera_note": "Your browser will ask for the camera and microphone. The video stays on this server.",
    "start.button": "Start rehearsal",
    "start.starting": "Starting…",
    "live.heading": "Live rehearsal",
    "live.preview": "Your camera (mirrored)",
    "live.timer": "Elapsed time",
    "live.end": "End rehearsal",
    "live.calibrate": "Look into the camera for 3 seconds…",
    "live.calibrate.skipped": "The coach has not seen a steady look into the camera, so it reads your eye contact with its default settings.",
    "live.ending": "Ending…",
    "live.eye": "Eye contact",
    "live.posture": "Posture",
    "live.eye.on": "On camera",
    "live.eye.off": "Look at the camera",
    "live.eye.unknown": "No face",
    "live.posture.ok": "Upright",
    "live.posture.off": "Tilted",
    "live.posture.unknown": "Not visible",
    "live.chart": "Last 60 seconds",
    "live.chart.eye": "Eye contact",
    "live.chart.posture": "Posture",
    "live.chart.gesture": "Gestures",
    "live.chart.voice": "Voice",
    "live.chart.aria": "Chart of eye contact, posture, gestures and voice over the last 60 seconds",
    "live.critiques": "Coach's notes",
    "live.critiques.empty": "Notes from the coach appear here every little while.",
    "live.cues": "Live cues",
    "live.latency": "Latency",
    "live.frames": "Frames",
    "live.transport.webrtc": "Connected over WebRTC",
    "live.transport.ws": "Connected over WebSocket",
    "live.transport.fallback": "WebRTC did not connect, so video is sent over a WebSocket instead.",
    "live.connecting": "Connecting…",
    "live.reconnecting": "Connection lost, reconnecting…",
    "live.no_mic": "No microphone: coaching on your voice is off.",
    "critique.source.vlm": "AI coach",
    "critique.source.rules": "Coach",
    "critique.category.gaze": "Gaze",
    "critique.category.facial_expression": "Expression",
    "critique.category.gestures": "Gestures",
    "critique.category.posture": "Posture",
    "critique.category.movement": "Movement",
    "critique.category.voice": "Voice",
    "critique.suggestion": "Try:",
    "severity.info": "Tip",
    "severity.warn": "Attention",
    "end.heading": "Your rehearsal",
    "end.finalizing": "Preparing your report and recording…",
    "end.state.finalizing": "Finishing the recording and analysis",
    "end.state.completed": "Your report is ready.",
    "end.state.failed": "The session could not be finished.",
    "end.report": "Report",
    "end.open_report": "Open report in a new tab",
    "end.download_recording": "Download recording (WebM)",
    "end.download_html": "Download report (HTML)",
    "end.download_json": "Download report (JSON)",
    "end.new": "Start a new rehearsal",
    "end.duration": "Duration",
    "score.overall": "Overall",
    "score.eye_contact": "Eye contact",
    "score.posture": "Posture",
    "score.gestures": "Gestures",
    "score.voice": "Voice",
    "error.title": "Something went wrong",
    "error.camera_denied": "The camera or microphone was blocked. Allow access in your browser's address bar, then try again.",
    "error.camera_missing": "No camera was found. Connect a camera and try again.",
    "error.camera_busy": "The camera is in use by another application. Close it and try again.",
    "error.camera_insecure": "The camera is only available on https:// or http://localhost.",
    "error.unreachable": "The coaching server cannot be reached. Check your connection and that the server is running.",
    "error.expired": "This session has expired or already ended. Start a new rehearsal.",
    "error.busy": "The server is busy right now. Please try again in a minute.",
    "error.server": "The server could not do that:",
    "error.connection_lost": "The connection to the server was lost.",
    "error.dismiss": "Dismiss",
    "cue.eye_contact": "Eye contact",
    "cue.posture": "Posture",
    "cue.head_tilt": "Head tilt",
    "cue.face_lost": "Face out of view",
    "cue.face_hidden": "Face hidden",
    "cue.too_close": "Too close",
    "cue.too_far": "Too far",
    "cue.gesture_none": "No gestures",
    "cue.gesture_excess": "Too many gestures",
    "cue.sway": "Swaying",
    "cue.too_quiet": "Too quiet",
    "cue.too_fast": "Too fast",
    "cue.long_pause": "Long pause",
    "cue.monotone": "Monotone",
  },
  ko: {
    "app.title": "피칭 라이브 코치",
    "app.tagline": "내 영상 위에 실시간 코칭을 받으며 발표를 연습하세요.",
    "start.heading": "새 리허설",
    "start.title": "발표 제목",
    "start.title.placeholder": "예: 시리즈 A 피칭",
    "start.language": "언어",
    "start.camera_note": "브라우저가 카메라와 마이크 권한을 요청합니다. 영상은 이 서버에만 저장됩니다.",
    "start.button": "리허설 시작",
    "start.starting": "시작하는 중…",
    "live.heading": "실시간 리허설",
    "live.preview": "내 카메라 (좌우 반전)",
    "live.timer": "경과 시간",
    "live.end": "리허설 종료",
    "live.calibrate": "3초 동안 카메라를 바라봐 주세요…",
    "live.calibrate.skipped": "카메라를 꾸준히 바라보는 모습을 확인하지 못해 기본 설정으로 시선을 판단합니다.",
    "live.ending": "종료하는 중…",
    "live.eye": "시선",
    "live.posture": "자세",
    "live.eye.on": "카메라 응시",
    "live.eye.off": "카메라를 보세요",
    "live.eye.unknown": "얼굴 없음",
    "live.posture.ok": "바른 자세",
    "live.posture.off": "기울어짐",
    "live.posture.unknown": "보이지 않음",
    "live.chart": "최근 60초",
    "live.chart.eye": "시선",
    "live.chart.posture": "자세",
    "live.chart.gesture": "손동작",
    "live.chart.voice": "목소리",
    "live.chart.aria": "최근 60초 동안의 시선, 자세, 손동작, 목소리 그래프",
    "live.critiques": "코치의 조언",
    "live.critiques.empty": "코치의 조언이 주기적으로 여기에 표시됩니다.",
    "live.cues": "실시간 알림",
    "live.latency": "지연",
    "live.frames": "프레임",
    "live.transport.webrtc": "WebRTC로 연결됨",
    "live.transport.ws": "WebSocket으로 연결됨",
    "live.transport.fallback": "WebRTC 연결에 실패하여 WebSocket으로 영상을 대신 전송합니다.",
    "live.connecting": "연결하는 중…",
    "live.reconnecting": "연결이 끊겨 다시 연결하는 중…",
    "live.no_mic": "마이크가 없어 목소리 코칭은 꺼져 있습니다.",
    "critique.source.vlm": "AI 코치",
    "critique.source.rules": "코치",
    "critique.category.gaze": "시선",
    "critique.category.facial_expression": "표정",
    "critique.category.gestures": "제스처",
    "critique.category.posture": "자세",
    "critique.category.movement": "움직임",
    "critique.category.voice": "목소리",
    "critique.suggestion": "제안:",
    "severity.info": "팁",
    "severity.warn": "주의",
    "end.heading": "리허설 결과",
    "end.finalizing": "보고서와 녹화 영상을 준비하는 중…",
    "end.state.finalizing": "녹화와 분석을 마무리하는 중",
    "end.state.completed": "보고서가 준비되었습니다.",
    "end.state.failed": "세션을 마무리하지 못했습니다.",
    "end.report": "보고서",
    "end.open_report": "새 탭에서 보고서 열기",
    "end.download_recording": "녹화 영상 다운로드 (WebM)",
    "end.download_html": "보고서 다운로드 (HTML)",
    "end.download_json": "보고서 다운로드 (JSON)",
    "end.new": "새 리허설 시작",
    "end.duration": "길이",
    "score.overall": "종합",
    "score.eye_contact": "시선",
    "score.posture": "자세",
    "score.gestures": "손동작",
    "score.voice": "목소리",
    "error.title": "문제가 발생했습니다",
    "error.camera_denied": "카메라 또는 마이크 권한이 차단되었습니다. 브라우저 주소창에서 권한을 허용한 뒤 다시 시도하세요.",
    "error.camera_missing": "카메라를 찾을 수 없습니다. 카메라를 연결한 뒤 다시 시도하세요.",
    "error.camera_busy": "다른 프로그램이 카메라를 사용 중입니다. 그 프로그램을 닫고 다시 시도하세요.",
    "error.camera_insecure": "카메라는 https:// 또는 http://localhost 에서만 사용할 수 있습니다.",
    "error.unreachable": "코칭 서버에 연결할 수 없습니다. 네트워크와 서버 실행 상태를 확인하세요.",
    "error.expired": "세션이 만료되었거나 이미 종료되었습니다. 새 리허설을 시작하세요.",
    "error.busy": "지금은 서버가 바쁩니다. 잠시 후 다시 시도하세요.",
    "error.server": "서버가 요청을 처리하지 못했습니다:",
    "error.connection_lost": "서버와의 연결이 끊어졌습니다.",
    "error.dismiss": "닫기",
    "cue.eye_contact": "시선",
    "cue.posture": "자세",
    "cue.head_tilt": "고개 기울어짐",
    "cue.face_lost": "얼굴이 화면 밖",
    "cue.face_hidden": "얼굴이 가려짐",
    "cue.too_close": "너무 가까움",
    "cue.too_far": "너무 멂",
    "cue.gesture_none": "손동작 없음",
    "cue.gesture_excess": "손동작 과다",
    "cue.sway": "몸 흔들림",
    "cue.too_quiet": "목소리 작음",
    "cue.too_fast": "말이 빠름",
    "cue.long_pause": "긴 침묵",
    "cue.monotone": "단조로운 톤",
  },
};

export const LANGUAGES = ["ko", "en"];

/** The string key naming a `cue` event: `face_lost` with the face `hidden` in the frame
 * (bowed over notes, turned away) is not one out of view. */
export function cueTitleKey(cue) {
  return cue.cue === "face_lost" && cue.hidden === true ? "cue.face_hidden" : `cue.${cue.cue}`;
}

/** A time on a media clock as a player shows it, floored: m:ss, or h:mm:ss from an hour. */
export function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds ?? 0));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

let current = "en";

export function language() {
  return current;
}

/** The string for `key` in the current language (English, then the key, as fallbacks). */
export function t(key) {
  return STRINGS[current][key] ?? STRINGS.en[key] ?? key;
}

/** The language to start in: ?lang=, then the last choice, then the browser's. */
export function initialLanguage() {
  const fromQuery = new URLSearchParams(location.search).get("lang");
  if (LANGUAGES.includes(fromQuery)) return fromQuery;
  try {
    const saved = localStorage.getItem("coach.lang");
    if (LANGUAGES.includes(saved)) return saved;
  } catch {
    // storage may be disabled; the browser's language decides then
  }
  return (navigator.language || "").toLowerCase().startsWith("ko") ? "ko" : "en";
}

export function applyLanguage(lang, root = document) {
  current = LANGUAGES.includes(lang) ? lang : "en";
  document.documentElement.lang = current;
  try {
    localStorage.setItem("coach.lang", current);
  } catch {
    // not remembered; harmless
  }
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  }
  for (const el of root.querySelectorAll("[data-i18n-aria-label]")) {
    el.setAttribute("aria-label", t(el.dataset.i18nAriaLabel));
  }
  for (const el of root.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
  document.title = t("app.title");
}
