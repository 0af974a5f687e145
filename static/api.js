// The REST calls of the contract, with failures turned into one error type whose `kind`
// the page maps to a message a person understands.

export class CoachError extends Error {
  /**
   * @param {"unreachable"|"expired"|"busy"|"server"} kind
   * @param {string} message server message or cause, shown after the translated sentence
   * @param {number} [status]
   * @param {string} [code] the server's stable error code
   */
  constructor(kind, message, status = 0, code = "") {
    super(message);
    this.kind = kind;
    this.status = status;
    this.code = code;
  }
}

async function request(method, path, { token, body } = {}) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch (err) {
    throw new CoachError("unreachable", String(err));
  }
  if (response.ok) return response.status === 204 ? null : response.json();
  let code = "";
  let message = response.statusText;
  try {
    const detail = (await response.json()).detail;
    if (detail && typeof detail === "object") {
      code = String(detail.code ?? "");
      message = String(detail.message ?? message);
    }
  } catch {
    // not JSON (a proxy's error page): keep the status text
  }
  const s = response.status;
  const kind =
    s === 401 || s === 403 || s === 404 || s === 410 ? "expired"
    : s === 429 || s === 503 ? "busy"
    : s === 502 || s === 504 ? "unreachable"
    : "server";
  throw new CoachError(kind, message, s, code);
}

/** A new session; with `pitch` ({pitch_id, token}) the pitch's next take, in its language. */
export function createSession({ title, language, pitch }) {
  if (pitch) {
    return request("POST", "/api/sessions", { token: pitch.token, body: { pitch_id: pitch.pitch_id } });
  }
  return request("POST", "/api/sessions", { body: { title, language } });
}

export function getSession(id, token) {
  return request("GET", `/api/sessions/${encodeURIComponent(id)}`, { token });
}

export function endSession(id, token) {
  return request("POST", `/api/sessions/${encodeURIComponent(id)}/end`, { token });
}

export function getReport(id, token) {
  return request("GET", `/api/sessions/${encodeURIComponent(id)}/report`, { token });
}

export function postOffer(offerUrl, token, offer) {
  // offer_url is absolute and built by the server from the request; only its path is used so
  // that the page keeps talking to the origin it was loaded from (proxies, CSP connect-src).
  const path = new URL(offerUrl, location.href).pathname;
  return request("POST", path, { token, body: { sdp: offer.sdp, type: offer.type } });
}

/** A same-origin link to one of the session's artefacts, authorised by the token query. */
export function artefactUrl(id, token, name) {
  const base = `/api/sessions/${encodeURIComponent(id)}`;
  const path = name ? `${base}/${name}` : `${base}/report`;
  return `${path}?token=${encodeURIComponent(token)}`;
}

// --- pitches (contract v1.1): every call but the first carries the pitch's token ---------

export function createPitch({ title, language, target_duration_s }) {
  return request("POST", "/api/pitches", { body: { title, language, target_duration_s } });
}

export function getPitch(id, token) {
  return request("GET", `/api/pitches/${encodeURIComponent(id)}`, { token });
}

export function compareTakes(id, token, a, b) {
  const query = `a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`;
  return request("GET", `/api/pitches/${encodeURIComponent(id)}/compare?${query}`, { token });
}

export function deletePitch(id, token) {
  return request("DELETE", `/api/pitches/${encodeURIComponent(id)}`, { token });
}
