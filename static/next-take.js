// The pitch whose next take the start form begins: set by pitches.js just before it submits
// the form, taken (once) by app.js when the rehearsal starts.

let pending = null;

/** @param {{pitch_id: string, token: string, title: string} | null} pitch */
export function setNextTake(pitch) {
  pending = pitch;
}

export function takeNextTake() {
  const pitch = pending;
  pending = null;
  return pitch;
}
