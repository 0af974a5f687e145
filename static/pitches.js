// "My pitches" on the start screen: the pitches this browser created (kept with their tokens in
// localStorage), each take's scores and figures charted across takes, two takes compared side
// by side with both recordings, the next take started in one click, a pitch deleted. Speaks
// the contract's v1.1 pitch routes; server text is always set with textContent.

import {
  artefactUrl,
  CoachError,
  compareTakes,
  createPitch,
  deletePitch,
  getPitch,
  getReport,
} from "./api.js";
import { clock, cueTitleKey, language, STRINGS, t } from "./i18n.js";
import { setNextTake } from "./next-take.js";

Object.assign(STRINGS.en, {
  "pitches.heading": "My pitches",
  "pitches.intro": "Rehearse the same pitch again and again and watch it improve. The pitches you create are kept in this browser.",
  "pitches.empty": "No pitches yet: create one below.",
  "pitches.new": "New pitch",
  "pitches.title": "Pitch title",
  "pitches.title.placeholder": "e.g. Demo day pitch",
  "pitches.title_required": "Give the pitch a title.",
  "pitches.language": "Language of the pitch",
  "pitches.target": "Target length in minutes (optional)",
  "pitches.create": "Create pitch",
  "pitches.created": "Pitch “{title}” created.",
  "pitches.takes_count": "Takes: {n}",
  "pitches.target_short": "Target {d}",
  "pitches.next_take": "Start next take",
  "pitches.show": "Progress and comparison",
  "pitches.delete": "Delete",
  "pitches.delete_confirm": "Delete this pitch with all its takes, recordings and reports?",
  "pitches.delete_yes": "Delete for good",
  "pitches.cancel": "Cancel",
  "pitches.deleted": "Pitch “{title}” deleted.",
  "pitches.gone": "“{title}” is no longer on the server and was removed from this list.",
  "pitches.loading": "Loading…",
  "pitches.progress": "Progress across takes",
  "pitches.progress.none": "Finish a take to see its scores here.",
  "pitches.not_measured": "not measured",
  "pitches.take": "Take {n}",
  "pitches.takes": "Takes",
  "pitches.col.take": "Take",
  "pitches.col.date": "Date",
  "pitches.col.duration": "Length",
  "pitches.col.state": "State",
  "pitches.col.report": "Report",
  "pitches.col.metric": "Measure",
  "pitches.col.change": "Change",
  "pitches.open_report": "Open report of take {n}",
  "pitches.state.created": "Not started",
  "pitches.state.live": "Live",
  "pitches.state.finalizing": "Finishing",
  "pitches.state.completed": "Done",
  "pitches.state.failed": "Failed",
  "pitches.compare": "Compare two takes",
  "pitches.compare.a": "First take",
  "pitches.compare.b": "Second take",
  "pitches.compare.button": "Compare",
  "pitches.compare.need_two": "Finish two takes to compare them.",
  "pitches.compare.same": "Choose two different takes.",
  "pitches.compare.loaded": "Take {a} and take {b} side by side.",
  "pitches.better": "better",
  "pitches.worse": "worse",
  "pitches.timeline": "Moments of take {n}",
  "pitches.timeline.none": "No cues in this take.",
  "pitches.seek": "Play take {n} from {t}",
  "pitches.recording": "Recording of take {n}",
  "pitches.no_recording": "This take has no recording.",
  "figure.eye_contact_share": "Time on camera",
  "figure.looking_down_share": "Time looking down",
  "figure.fillers_per_min": "Fillers a minute",
  "figure.words_per_min": "Words a minute",
  "figure.cues_on": "Cues",
});
Object.assign(STRINGS.ko, {
  "pitches.heading": "내 피치",
  "pitches.intro": "같은 피치를 여러 번 연습하며 나아지는 모습을 확인하세요. 만든 피치는 이 브라우저에 보관됩니다.",
  "pitches.empty": "아직 피치가 없습니다. 아래에서 만들어 보세요.",
  "pitches.new": "새 피치",
  "pitches.title": "피치 제목",
  "pitches.title.placeholder": "예: 데모데이 피칭",
  "pitches.title_required": "피치 제목을 입력하세요.",
  "pitches.language": "피치 언어",
  "pitches.target": "목표 길이 (분, 선택)",
  "pitches.create": "피치 만들기",
  "pitches.created": "“{title}” 피치를 만들었습니다.",
  "pitches.takes_count": "테이크 {n}개",
  "pitches.target_short": "목표 {d}",
  "pitches.next_take": "다음 테이크 시작",
  "pitches.show": "변화와 비교 보기",
  "pitches.delete": "삭제",
  "pitches.delete_confirm": "이 피치와 모든 테이크, 녹화 영상, 보고서를 삭제할까요?",
  "pitches.delete_yes": "영구 삭제",
  "pitches.cancel": "취소",
  "pitches.deleted": "“{title}” 피치를 삭제했습니다.",
  "pitches.gone": "“{title}” 피치가 서버에 더 이상 없어 목록에서 지웠습니다.",
  "pitches.loading": "불러오는 중…",
  "pitches.progress": "테이크별 변화",
  "pitches.progress.none": "테이크를 마치면 점수가 여기에 표시됩니다.",
  "pitches.not_measured": "측정 안 됨",
  "pitches.take": "테이크 {n}",
  "pitches.takes": "테이크 목록",
  "pitches.col.take": "테이크",
  "pitches.col.date": "날짜",
  "pitches.col.duration": "길이",
  "pitches.col.state": "상태",
  "pitches.col.report": "보고서",
  "pitches.col.metric": "항목",
  "pitches.col.change": "변화",
  "pitches.open_report": "테이크 {n} 보고서 열기",
  "pitches.state.created": "시작 전",
  "pitches.state.live": "진행 중",
  "pitches.state.finalizing": "마무리 중",
  "pitches.state.completed": "완료",
  "pitches.state.failed": "실패",
  "pitches.compare": "두 테이크 비교",
  "pitches.compare.a": "첫 번째 테이크",
  "pitches.compare.b": "두 번째 테이크",
  "pitches.compare.button": "비교",
  "pitches.compare.need_two": "비교하려면 테이크를 두 개 이상 마치세요.",
  "pitches.compare.same": "서로 다른 테이크를 고르세요.",
  "pitches.compare.loaded": "테이크 {a}{a|과|와} 테이크 {b}{b|을|를} 나란히 보여 줍니다.",
  "pitches.better": "좋아짐",
  "pitches.worse": "나빠짐",
  "pitches.timeline": "테이크 {n}의 순간들",
  "pitches.timeline.none": "이 테이크에는 알림이 없습니다.",
  "pitches.seek": "테이크 {n}{n|을|를} {t}부터 재생",
  "pitches.recording": "테이크 {n} 녹화 영상",
  "pitches.no_recording": "이 테이크에는 녹화 영상이 없습니다.",
  "figure.eye_contact_share": "카메라 응시 비율",
  "figure.looking_down_share": "아래를 본 비율",
  "figure.fillers_per_min": "분당 군말",
  "figure.words_per_min": "분당 단어",
  "figure.cues_on": "알림 횟수",
});

// The v1.1 cues, where the page's own table does not name them yet.
for (const [lang, names] of Object.entries({
  en: { "cue.time": "Time", "cue.filler_words": "Filler words" },
  ko: { "cue.time": "시간", "cue.filler_words": "군말" },
})) {
  for (const [key, text] of Object.entries(names)) STRINGS[lang][key] ??= text;
}

const STORE_KEY = "coach.pitches";
const REFRESH_MS = 2000; // while a take is still finishing
const SVG = "http://www.w3.org/2000/svg";
// Each measure: where it comes from, how it reads, which way is better (+1 up, -1 down, 0 none).
const MEASURES = [
  { key: "overall", from: "scores", label: "score.overall", max: 100, better: 1 },
  { key: "eye_contact", from: "scores", label: "score.eye_contact", max: 100, better: 1 },
  { key: "posture", from: "scores", label: "score.posture", max: 100, better: 1 },
  { key: "gestures", from: "scores", label: "score.gestures", max: 100, better: 1 },
  { key: "voice", from: "scores", label: "score.voice", max: 100, better: 1 },
  { key: "eye_contact_share", from: "figures", label: "figure.eye_contact_share", max: 100, scale: 100, unit: "%", better: 1 },
  { key: "looking_down_share", from: "figures", label: "figure.looking_down_share", max: 100, scale: 100, unit: "%", better: -1 },
  { key: "fillers_per_min", from: "figures", label: "figure.fillers_per_min", digits: 1, better: -1 },
  { key: "words_per_min", from: "figures", label: "figure.words_per_min", better: 0 },
  { key: "cues_on", from: "figures", label: "figure.cues_on", better: -1 },
];

const $ = (id) => document.getElementById(id);

const st = {
  pitches: loadPitches(), // [{pitch_id, token, title, language, target_duration_s, created_at}]
  details: new Map(), // pitch_id -> GET /api/pitches/{id}
  open: null, // the pitch_id whose progress is shown
  confirming: null, // the pitch_id whose delete asks for confirmation
  comparison: null, // {pitchId, answer, reports: [a, b]}
  status: null, // {key, vars, error}
  refreshTimer: 0,
};

/** `t` with {name} placeholders filled. `{name|after-consonant|after-vowel}` is the Korean
 * particle that follows `name`'s number as it is read (1 일 -> 과/을, 2 이 -> 와/를). */
function tf(key, vars = {}) {
  return t(key).replace(/\{(\w+)(?:\|([^|}]*)\|([^}]*))?\}/g, (_, name, consonant, vowel) =>
    consonant === undefined ? String(vars[name] ?? "") : endsInConsonant(vars[name]) ? consonant : vowel,
  );
}

/** Whether a number read in Sino-Korean ends in a consonant: its last digit, or 십/백/천/만. */
function endsInConsonant(value) {
  const n = Number(value);
  if (!Number.isInteger(n)) return true;
  return ![2, 4, 5, 9].includes(Math.abs(n) % 10);
}

function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name === "className") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  node.append(...children);
  return node;
}

function svg(tag, attrs = {}, children = []) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  node.append(...children);
  return node;
}

/** A length, rounded to the second as the report says it. */
function lengthClock(seconds) {
  return clock(Math.round(seconds ?? 0));
}

function formatValue(measure, value) {
  if (typeof value !== "number") return "–";
  const v = value * (measure.scale ?? 1);
  return `${v.toFixed(measure.digits ?? 0)}${measure.unit ?? ""}`;
}

function formatDelta(measure, delta) {
  if (typeof delta !== "number") return "–";
  const v = delta * (measure.scale ?? 1);
  const text = Math.abs(v).toFixed(measure.digits ?? 0);
  const sign = Number(text) === 0 ? "±" : v > 0 ? "+" : "−";
  return `${sign}${text}${measure.unit ? " pt" : ""}`;
}

// --- storage -------------------------------------------------------------------------------

function loadPitches() {
  try {
    const list = JSON.parse(localStorage.getItem(STORE_KEY) ?? "[]");
    return Array.isArray(list) ? list.filter((p) => p && p.pitch_id && p.token) : [];
  } catch {
    return [];
  }
}

function savePitches() {
  try {
    localStorage.setItem(STORE_KEY, JSON.stringify(st.pitches));
  } catch {
    // storage disabled or full: the list lives as long as the page
  }
}

function forget(pitchId) {
  st.pitches = st.pitches.filter((p) => p.pitch_id !== pitchId);
  st.details.delete(pitchId);
  if (st.open === pitchId) st.open = null;
  if (st.comparison?.pitchId === pitchId) st.comparison = null;
  savePitches();
}

// --- status --------------------------------------------------------------------------------

function setStatus(key, vars = {}, error = false, detail = "") {
  st.status = key ? { key, vars, error, detail } : null;
  renderStatus();
}

function renderStatus() {
  const node = $("pitches-status");
  const text = st.status ? tf(st.status.key, st.status.vars) : "";
  node.textContent = st.status?.detail ? `${text} ${st.status.detail}` : text;
  node.dataset.error = st.status?.error ? "true" : "false";
}

function apiErrorStatus(err) {
  const kind = err instanceof CoachError ? err.kind : "server";
  const key = { unreachable: "error.unreachable", expired: "error.expired", busy: "error.busy" }[kind];
  // The server's own words only where ours are generic, as the rest of the page does.
  setStatus(key ?? "error.server", {}, true, key ? "" : String(err?.message ?? err));
}

// --- loading -------------------------------------------------------------------------------

async function refresh(pitchId) {
  const pitch = st.pitches.find((p) => p.pitch_id === pitchId);
  if (!pitch) return;
  try {
    const answer = await getPitch(pitch.pitch_id, pitch.token);
    st.details.set(pitchId, answer);
    pitch.title = answer.title;
  } catch (err) {
    if (err instanceof CoachError && [401, 403, 404, 410].includes(err.status)) {
      forget(pitchId);
      setStatus("pitches.gone", { title: pitch.title });
    } else {
      apiErrorStatus(err);
    }
  }
}

async function refreshAll() {
  clearTimeout(st.refreshTimer);
  await Promise.all(st.pitches.map((p) => refresh(p.pitch_id)));
  render();
  // A take that is still finishing gets its scores in a moment: look again.
  const finishing = [...st.details.values()].some((d) =>
    d.takes.some((k) => k.state === "live" || k.state === "finalizing"),
  );
  if (finishing && document.body.dataset.screen !== "live") {
    st.refreshTimer = setTimeout(refreshAll, REFRESH_MS);
  }
}

// --- the skeleton ----------------------------------------------------------------------------

function i18n(tag, key, props = {}) {
  return el(tag, { ...props, dataset: { ...(props.dataset ?? {}), i18n: key }, text: t(key) });
}

function buildSkeleton(root) {
  const titleInput = el("input", {
    id: "pitch-title",
    name: "pitch-title",
    type: "text",
    maxlength: 200,
    autocomplete: "off",
    required: true,
    "data-i18n-placeholder": "pitches.title.placeholder",
    placeholder: t("pitches.title.placeholder"),
  });
  const radios = ["ko", "en"].map((lang) =>
    el("label", {}, [
      el("input", { type: "radio", name: "pitch-language", value: lang }),
      el("span", { lang, text: lang === "ko" ? "한국어" : "English" }),
    ]),
  );
  const form = el("form", { id: "pitch-form", className: "pitch-form", novalidate: true, "aria-labelledby": "pitch-new-heading" }, [
    i18n("h3", "pitches.new", { id: "pitch-new-heading" }),
    el("label", { className: "field" }, [i18n("span", "pitches.title"), titleInput]),
    el("fieldset", { className: "field" }, [
      i18n("legend", "pitches.language"),
      el("div", { className: "segmented" }, radios),
    ]),
    el("label", { className: "field" }, [
      i18n("span", "pitches.target"),
      el("input", { id: "pitch-target", name: "pitch-target", type: "number", min: 0.5, max: 120, step: 0.5, inputmode: "decimal" }),
    ]),
    i18n("button", "pitches.create", { id: "pitch-create", type: "submit", className: "btn btn-primary" }),
  ]);
  root.replaceChildren(
    i18n("h2", "pitches.heading", { id: "pitches-heading", tabindex: -1 }),
    i18n("p", "pitches.intro", { className: "muted small" }),
    el("p", { id: "pitches-status", className: "pitches-status small", role: "status", "aria-live": "polite" }),
    el("ul", { id: "pitch-list", className: "pitch-list", "aria-labelledby": "pitches-heading" }),
    i18n("p", "pitches.empty", { id: "pitches-empty", className: "muted small" }),
    form,
  );
  form.addEventListener("submit", onCreate);
}

// --- create, take, delete ------------------------------------------------------------------

async function onCreate(event) {
  event.preventDefault();
  const title = $("pitch-title").value.trim();
  if (!title) {
    setStatus("pitches.title_required", {}, true);
    $("pitch-title").setAttribute("aria-invalid", "true");
    $("pitch-title").focus();
    return;
  }
  $("pitch-title").removeAttribute("aria-invalid");
  const lang = document.querySelector('input[name="pitch-language"]:checked')?.value ?? language();
  const minutes = Number($("pitch-target").value);
  const target = Number.isFinite(minutes) && minutes > 0 ? Math.round(minutes * 60) : null;
  const button = $("pitch-create");
  button.disabled = true;
  try {
    const created = await createPitch({ title, language: lang, target_duration_s: target });
    st.pitches.unshift({
      pitch_id: created.pitch_id,
      token: created.token,
      title: created.title,
      language: created.language,
      target_duration_s: created.target_duration_s,
      created_at: created.created_at,
    });
    savePitches();
    st.details.set(created.pitch_id, { ...created, takes: [] });
    $("pitch-title").value = "";
    $("pitch-target").value = "";
    setStatus("pitches.created", { title: created.title });
    render();
    focusKey(`take:${created.pitch_id}`);
  } catch (err) {
    apiErrorStatus(err);
  } finally {
    button.disabled = false;
  }
}

function startTake(pitch) {
  setNextTake({ pitch_id: pitch.pitch_id, token: pitch.token, title: pitch.title });
  $("start-form").requestSubmit();
}

async function confirmDelete(pitch) {
  try {
    await deletePitch(pitch.pitch_id, pitch.token);
  } catch (err) {
    if (!(err instanceof CoachError && err.status === 404)) {
      apiErrorStatus(err);
      return;
    }
  }
  st.confirming = null;
  forget(pitch.pitch_id);
  setStatus("pitches.deleted", { title: pitch.title });
  render();
  $("pitches-heading").focus();
}

// --- rendering -----------------------------------------------------------------------------

function focusKey(key) {
  document.querySelector(`[data-focus-key="${CSS.escape(key)}"]`)?.focus();
}

function render() {
  const focused = document.activeElement?.dataset?.focusKey;
  const list = $("pitch-list");
  list.replaceChildren(...st.pitches.map(renderPitch));
  $("pitches-empty").hidden = st.pitches.length > 0;
  renderStatus();
  if (focused) focusKey(focused);
}

function renderPitch(pitch) {
  const id = pitch.pitch_id;
  const detail = st.details.get(id);
  const takes = detail?.takes ?? [];
  const titleId = `pitch-title-${id}`;
  const meta = [pitch.language === "ko" ? "한국어" : "English", tf("pitches.takes_count", { n: takes.length })];
  if (pitch.target_duration_s) meta.push(tf("pitches.target_short", { d: lengthClock(pitch.target_duration_s) }));
  const open = st.open === id;
  const actions = el("div", { className: "pitch-actions" }, [
    el("button", {
      type: "button",
      className: "btn btn-primary pitch-take",
      "aria-describedby": titleId,
      dataset: { focusKey: `take:${id}` },
      text: t("pitches.next_take"),
    }),
    el("button", {
      type: "button",
      className: "btn pitch-open",
      "aria-expanded": String(open),
      "aria-controls": `pitch-detail-${id}`,
      "aria-describedby": titleId,
      dataset: { focusKey: `open:${id}` },
      text: t("pitches.show"),
    }),
    el("button", {
      type: "button",
      className: "btn btn-ghost pitch-delete",
      "aria-describedby": titleId,
      "aria-expanded": String(st.confirming === id),
      dataset: { focusKey: `delete:${id}` },
      text: t("pitches.delete"),
    }),
  ]);
  actions.querySelector(".pitch-take").addEventListener("click", () => startTake(pitch));
  actions.querySelector(".pitch-open").addEventListener("click", () => toggleOpen(id));
  actions.querySelector(".pitch-delete").addEventListener("click", () => {
    st.confirming = st.confirming === id ? null : id;
    render();
    if (st.confirming) focusKey(`cancel:${id}`);
  });
  const item = el("li", { className: "pitch", dataset: { pitchId: id, state: detail ? "ready" : "loading" } }, [
    el("div", { className: "pitch-head" }, [
      el("h3", { id: titleId, className: "pitch-title", text: pitch.title }),
      el("span", { className: "pitch-meta muted small", text: meta.join(" · ") }),
    ]),
    actions,
  ]);
  if (st.confirming === id) {
    const yes = el("button", { type: "button", className: "btn btn-danger pitch-delete-yes", dataset: { focusKey: `yes:${id}` }, text: t("pitches.delete_yes") });
    const no = el("button", { type: "button", className: "btn btn-ghost", dataset: { focusKey: `cancel:${id}` }, text: t("pitches.cancel") });
    yes.addEventListener("click", () => confirmDelete(pitch));
    no.addEventListener("click", () => {
      st.confirming = null;
      render();
      focusKey(`delete:${id}`);
    });
    item.append(
      el("div", { className: "pitch-confirm", role: "group", "aria-labelledby": `pitch-confirm-${id}` }, [
        el("p", { id: `pitch-confirm-${id}`, text: t("pitches.delete_confirm") }),
        yes,
        no,
      ]),
    );
  }
  if (open) item.append(renderDetail(pitch, detail));
  return item;
}

function toggleOpen(id) {
  st.open = st.open === id ? null : id;
  if (st.comparison && st.comparison.pitchId !== st.open) st.comparison = null;
  render();
  if (st.open) refresh(id).then(render);
}

function renderDetail(pitch, detail) {
  const box = el("div", { id: `pitch-detail-${pitch.pitch_id}`, className: "pitch-detail" });
  if (!detail) {
    box.append(el("p", { className: "muted small", text: t("pitches.loading") }));
    return box;
  }
  const done = detail.takes.filter((k) => k.state === "completed");
  box.append(
    el("h4", { text: t("pitches.progress") }),
    done.length ? renderProgress(done) : el("p", { className: "muted small", text: t("pitches.progress.none") }),
    renderTakes(pitch, detail.takes),
    renderCompareForm(pitch, done),
  );
  if (st.comparison?.pitchId === pitch.pitch_id) box.append(renderComparison(pitch, st.comparison));
  return box;
}

// --- the progress chart: one small SVG a measure, a point a completed take ------------------

function renderProgress(takes) {
  const grid = el("div", { className: "progress-grid", id: "progress" });
  for (const m of MEASURES) {
    const values = takes.map((k) => {
      const v = k[m.from]?.[m.key];
      return typeof v === "number" ? v * (m.scale ?? 1) : null;
    });
    grid.append(progressChart(m, takes, values));
  }
  return grid;
}

function progressChart(m, takes, values) {
  const W = 240, H = 120, L = 14, R = W - 14, T = 22, B = H - 22;
  const measured = values.filter((v) => v != null);
  const top = m.max ?? Math.max(1, Math.ceil(Math.max(...measured, 0) * 1.2));
  const x = (i) => (takes.length === 1 ? (L + R) / 2 : L + ((R - L) * i) / (takes.length - 1));
  const y = (v) => B - ((B - T) * Math.min(Math.max(v, 0), top)) / top;
  const label = t(m.label);
  const spoken = takes
    .map((k, i) => `${tf("pitches.take", { n: k.take })}: ${values[i] == null ? t("pitches.not_measured") : formatValue(m, values[i] / (m.scale ?? 1))}`)
    .join(", ");
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${label}. ${spoken}` });
  chart.append(
    svg("line", { class: "progress-axis", x1: L, y1: B, x2: R, y2: B }),
    svg("line", { class: "progress-grid-line", x1: L, y1: T, x2: R, y2: T }),
  );
  const points = [];
  takes.forEach((k, i) => {
    chart.append(svg("text", { class: "progress-tick", x: x(i), y: H - 6, "text-anchor": "middle" }, [String(k.take)]));
    if (values[i] == null) return;
    points.push(`${x(i)},${y(values[i])}`);
  });
  if (points.length > 1) chart.append(svg("polyline", { class: "progress-line", points: points.join(" ") }));
  takes.forEach((k, i) => {
    if (values[i] == null) return;
    const text = formatValue(m, values[i] / (m.scale ?? 1));
    chart.append(
      svg("circle", { class: "progress-point", cx: x(i), cy: y(values[i]), r: 4, "data-take": k.take, "data-value": values[i] }, [
        svg("title", {}, [`${tf("pitches.take", { n: k.take })}: ${text}`]),
      ]),
      svg("text", { class: "progress-value", x: x(i), y: y(values[i]) - 8, "text-anchor": "middle" }, [text]),
    );
  });
  if (!measured.length) {
    chart.append(svg("text", { class: "progress-empty", x: W / 2, y: (T + B) / 2, "text-anchor": "middle" }, [t("pitches.not_measured")]));
  }
  return el("figure", { className: "progress-metric", dataset: { key: m.key } }, [
    el("figcaption", { text: label }),
    chart,
  ]);
}

// --- the takes table -----------------------------------------------------------------------

function renderTakes(pitch, takes) {
  const head = ["pitches.col.take", "pitches.col.date", "pitches.col.duration", "pitches.col.state", "score.overall", "pitches.col.report"];
  const dateFormat = new Intl.DateTimeFormat(language() === "ko" ? "ko-KR" : "en-GB", { dateStyle: "medium", timeStyle: "short" });
  const rows = takes.map((k) => {
    const report = k.report_url
      ? el("a", {
          href: artefactUrl(k.session_id, pitch.token, "report.html"),
          target: "_blank",
          rel: "noopener",
          className: "take-report",
          text: t("end.report"),
          "aria-label": tf("pitches.open_report", { n: k.take }),
        })
      : "–";
    return el("tr", { dataset: { take: k.take, state: k.state } }, [
      el("th", { scope: "row", text: String(k.take) }),
      el("td", { text: k.created_at ? dateFormat.format(new Date(k.created_at)) : "–" }),
      el("td", { className: "num", text: k.duration_s == null ? "–" : lengthClock(k.duration_s) }),
      el("td", { text: t(`pitches.state.${k.state}`) }),
      el("td", { className: "num", text: formatValue(MEASURES[0], k.scores?.overall) }),
      el("td", {}, [report]),
    ]);
  });
  return el("table", { className: "takes-table" }, [
    el("caption", { text: t("pitches.takes") }),
    el("thead", {}, [el("tr", {}, head.map((key) => el("th", { scope: "col", text: t(key) })))]),
    el("tbody", {}, rows),
  ]);
}

// --- comparing two takes -------------------------------------------------------------------

function renderCompareForm(pitch, done) {
  const id = pitch.pitch_id;
  if (done.length < 2) return el("p", { className: "muted small", text: t("pitches.compare.need_two") });
  const chosen = st.comparison?.pitchId === id ? st.comparison.answer : null;
  const select = (name, preset) =>
    el(
      "select",
      { id: `compare-${name}-${id}`, className: `compare-${name}`, dataset: { focusKey: `compare-${name}:${id}` } },
      done.map((k) =>
        el("option", { value: k.session_id, selected: k.session_id === preset, text: tf("pitches.take", { n: k.take }) }),
      ),
    );
  const a = select("a", chosen?.a.session_id ?? done[done.length - 2].session_id);
  const b = select("b", chosen?.b.session_id ?? done[done.length - 1].session_id);
  const form = el("form", { className: "compare-form", "aria-labelledby": `compare-heading-${id}` }, [
    el("h4", { id: `compare-heading-${id}`, text: t("pitches.compare") }),
    el("label", { for: a.id, text: t("pitches.compare.a") }),
    a,
    el("label", { for: b.id, text: t("pitches.compare.b") }),
    b,
    el("button", { type: "submit", className: "btn compare-button", dataset: { focusKey: `compare:${id}` }, text: t("pitches.compare.button") }),
  ]);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    compare(pitch, a.value, b.value);
  });
  return form;
}

async function compare(pitch, a, b) {
  if (a === b) {
    setStatus("pitches.compare.same", {}, true);
    return;
  }
  try {
    const answer = await compareTakes(pitch.pitch_id, pitch.token, a, b);
    // Each take's report gives its own timeline of moments; none is no reason to fail.
    const reports = await Promise.all(
      [answer.a, answer.b].map((k) => getReport(k.session_id, pitch.token).catch(() => null)),
    );
    st.comparison = { pitchId: pitch.pitch_id, answer, reports };
    render();
    setStatus("pitches.compare.loaded", { a: answer.a.take, b: answer.b.take });
    document.getElementById(`comparison-${pitch.pitch_id}`)?.focus();
  } catch (err) {
    apiErrorStatus(err);
  }
}

const videos = new Map(); // session_id -> its <video>, kept across re-renders (and playback)

function renderComparison(pitch, { answer, reports }) {
  const head = ["pitches.col.metric", null, null, "pitches.col.change"];
  const headers = head.map((key, i) =>
    el("th", { scope: "col", text: key ? t(key) : tf("pitches.take", { n: (i === 1 ? answer.a : answer.b).take }) }),
  );
  const rows = MEASURES.map((m) => {
    const delta = answer.delta?.[m.from]?.[m.key];
    const direction = typeof delta === "number" && delta !== 0 && m.better ? Math.sign(delta) * m.better : 0;
    const change = el("td", { className: "num delta", dataset: { key: m.key, direction: String(direction) } }, [
      formatDelta(m, delta),
    ]);
    if (direction) change.append(el("span", { className: "visually-hidden", text: ` (${t(direction > 0 ? "pitches.better" : "pitches.worse")})` }));
    return el("tr", { dataset: { key: m.key } }, [
      el("th", { scope: "row", text: t(m.label) }),
      el("td", { className: "num", text: formatValue(m, answer.a[m.from]?.[m.key]) }),
      el("td", { className: "num", text: formatValue(m, answer.b[m.from]?.[m.key]) }),
      change,
    ]);
  });
  const table = el("table", { className: "compare-table" }, [
    el("caption", { text: tf("pitches.compare.loaded", { a: answer.a.take, b: answer.b.take }) }),
    el("thead", {}, [el("tr", {}, headers)]),
    el("tbody", {}, rows),
  ]);
  const columns = el("div", { className: "compare-columns" }, [
    renderTakeColumn(pitch, answer.a, reports[0]),
    renderTakeColumn(pitch, answer.b, reports[1]),
  ]);
  for (const id of [...videos.keys()]) {
    if (id !== answer.a.session_id && id !== answer.b.session_id) videos.delete(id);
  }
  return el("section", { id: `comparison-${pitch.pitch_id}`, className: "comparison", tabindex: -1, "aria-label": t("pitches.compare") }, [table, columns]);
}

function takeVideo(pitch, take) {
  let video = videos.get(take.session_id);
  if (!video) {
    video = el("video", { className: "compare-video", controls: true, preload: "metadata", playsinline: true });
    video.src = artefactUrl(take.session_id, pitch.token, "recording.webm");
    videos.set(take.session_id, video);
  }
  video.setAttribute("aria-label", tf("pitches.recording", { n: take.take }));
  video.dataset.take = String(take.take);
  return video;
}

function seek(video, seconds) {
  video.currentTime = Math.max(0, seconds);
  video.play().catch(() => {});
}

function renderTakeColumn(pitch, take, report) {
  const n = take.take;
  const column = el("div", { className: "compare-take", dataset: { take: n } }, [el("h5", { text: tf("pitches.take", { n }) })]);
  if (!take.recording_url) {
    column.append(el("p", { className: "muted small", text: t("pitches.no_recording") }));
    return column;
  }
  const video = takeVideo(pitch, take);
  const duration = Math.max(1, report?.duration_s ?? take.duration_s ?? 1);
  const moments = (report?.cues ?? [])
    .filter((c) => c.state === "on" && typeof c.t === "number")
    .map((c) => ({ t: c.t, label: STRINGS.en[cueTitleKey(c)] ? t(cueTitleKey(c)) : String(c.cue), severity: c.severity }))
    .sort((x, y) => x.t - y.t); // in time order: a cue said late (fillers) is not listed last
  // The strip: the take's length with its moments; a click anywhere plays from there.
  const W = 600, H = 28;
  const strip = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "take-strip", "aria-hidden": "true", preserveAspectRatio: "none" });
  strip.append(svg("rect", { class: "take-strip-bar", x: 0, y: 10, width: W, height: 8, rx: 4 }));
  for (const m of moments) {
    strip.append(svg("rect", { class: `take-strip-mark sev-${m.severity === "warn" ? "warn" : "info"}`, x: (W * Math.min(m.t, duration)) / duration - 2, y: 4, width: 4, height: 20, "data-t": m.t }));
  }
  strip.addEventListener("click", (event) => {
    const box = strip.getBoundingClientRect();
    const mark = event.target.closest?.("[data-t]");
    seek(video, mark ? Number(mark.dataset.t) : (duration * (event.clientX - box.left)) / box.width);
  });
  const listLabel = tf("pitches.timeline", { n });
  const list = moments.length
    ? el("ol", { className: "take-moments", "aria-label": listLabel }, moments.map((m) => {
        const button = el("button", {
          type: "button",
          className: `take-moment sev-${m.severity === "warn" ? "warn" : "info"}`,
          dataset: { t: m.t },
          "aria-label": `${tf("pitches.seek", { n, t: clock(m.t) })} · ${m.label}`,
          text: `${clock(m.t)} · ${m.label}`,
        });
        button.addEventListener("click", () => seek(video, m.t));
        return el("li", {}, [button]);
      }))
    : el("p", { className: "muted small", text: t("pitches.timeline.none") });
  column.append(video, strip, list);
  return column;
}

// --- wiring --------------------------------------------------------------------------------

function init() {
  const root = $("pitches");
  if (!root) return;
  buildSkeleton(root);
  // A new pitch is in the page's language unless chosen otherwise.
  let languageChosen = false;
  const pitchRadios = document.querySelectorAll('input[name="pitch-language"]');
  const followPage = () => {
    if (languageChosen) return;
    for (const radio of pitchRadios) radio.checked = radio.value === language();
  };
  for (const radio of pitchRadios) radio.addEventListener("change", () => (languageChosen = true));
  followPage();
  render();
  refreshAll();
  // The page's language switch re-renders what is built here; back on the start screen (a
  // take ended) the takes are read again.
  new MutationObserver(() => {
    followPage();
    render();
  }).observe(document.documentElement, { attributes: true, attributeFilter: ["lang"] });
  let screen = document.body.dataset.screen;
  new MutationObserver(() => {
    const now = document.body.dataset.screen;
    if (now === screen) return;
    screen = now;
    if (now === "start") refreshAll();
  }).observe(document.body, { attributes: true, attributeFilter: ["data-screen"] });
}

init();
