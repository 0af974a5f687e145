"""Voice analysis: loudness, voice activity and pauses, pace, and pitch variety.

Audio arrives as `AudioChunk`s of any length (10 ms .. 1 s) of 16 kHz mono int16. The
analyzer cuts the stream into 1 s windows (aligned to the first chunk's media time) and
returns one `AudioAnalysis` per completed window:

- loudness: RMS of the window and of its speech frames, in dBFS (calibration: see Settings'
  voice section and `AudioAnalysis`);
- voice activity: webrtcvad on 20 ms frames; a silence ends only when speech has lasted
  `voice_vad_onset_frames` frames, so clicks don't split a pause;
- pace: syllable nuclei after de Jong & Wempe (2009): peaks of the intensity contour that are
  at most `voice_syllable_silence_db` below the loud speech of the last seconds, are followed
  by a dip of `voice_syllable_min_dip_db`, lie in speech frames and are voiced (f0 defined).
  The rate is nuclei per second of speech (articulation rate) over `voice_rate_window_s`;
- pitch variety: the standard deviation, in semitones, of the f0 track (Praat's
  autocorrelation pitch) of the voiced speech frames over `voice_pitch_window_s`.

Everything per window is a few milliseconds of work (see bench/voice.py); the analyzer holds
state, so one instance serves one session and is called by one thread at a time.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Literal

import numpy as np
import parselmouth
import webrtcvad

from app.config import Settings
from app.frames import AudioAnalysis, AudioChunk, CueName, PauseSpan

SAMPLE_RATE = 16000
SILENCE_DBFS = -100.0  # reported for digital silence, where the log would be -inf
_CONTEXT_S = 0.5  # audio before each window given to the intensity/pitch trackers
_NUCLEUS_LAG_S = 0.25  # nuclei are counted this late so the dip after each one is seen
_INTENSITY_MIN_PITCH_HZ = 50.0  # Praat's intensity smoothing window follows from this
# Praat's intensity analysis needs at least 6.4 periods of that pitch (0.128 s): a shorter
# stretch (the last bit of a session that ended within its first window) is not tracked.
_MIN_TRACK_N = math.ceil(6.4 / _INTENSITY_MIN_PITCH_HZ * SAMPLE_RATE) + 1
_TRACK_STEP_S = 0.01
_OCTAVE_ERROR_ST = 9.0  # f0 further than this from the median is a tracking error
_MAX_GAP_FILL_S = 10.0  # longer gaps in media time restart the window grid

Lang = Literal["ko", "en"]


class AudioFormatError(ValueError):
    """Audio that the voice stage cannot analyse. `code` is stable for error events."""

    code = "bad_audio"


def dbfs(samples: np.ndarray) -> float:
    """RMS level of int16 samples in dBFS (full-scale square wave = 0, sine = -3)."""
    if samples.size == 0:
        return SILENCE_DBFS
    x = samples.astype(np.float64) / 32768.0
    rms = math.sqrt(float(np.mean(x * x)))
    return SILENCE_DBFS if rms <= 1e-5 else max(SILENCE_DBFS, 20.0 * math.log10(rms))


class VoiceAnalyzer:
    """Streaming voice analysis for one session. Not thread-safe: one caller at a time."""

    def __init__(self, language: Lang, settings: Settings) -> None:
        if language not in ("ko", "en"):
            raise ValueError(f"unsupported language {language!r}")
        self.language: Lang = language
        self.settings = settings
        self._window_n = round(settings.voice.window_s * SAMPLE_RATE)
        self._frame_n = SAMPLE_RATE * settings.voice.vad_frame_ms // 1000
        self._frame_s = self._frame_n / SAMPLE_RATE
        self._context_n = round(_CONTEXT_S * SAMPLE_RATE)
        self._vad = webrtcvad.Vad(settings.voice.vad_mode)

        self._t0: float | None = None  # media time of sample 0 of the grid
        self._consumed = 0  # samples of the grid already turned into windows
        self._pending: list[np.ndarray] = []  # received samples not yet in a window
        self._pending_n = 0
        self._context = np.zeros(0, dtype=np.int16)  # the last _CONTEXT_S before the window
        self._context_speech = np.zeros(0, dtype=bool)  # VAD flags of the context frames

        # pause state machine, at VAD frame resolution
        self._heard_speech = False
        self._silence_start: float | None = None
        self._speech_run = 0

        def windows_for(seconds: float) -> int:
            return max(1, math.ceil(seconds / settings.voice.window_s))

        # (nuclei, speech seconds) per window; loudness reference per window with speech
        self._rate_hist: deque[tuple[int, float]] = deque(
            maxlen=windows_for(settings.voice.rate_window_s)
        )
        self._loud_hist: deque[float] = deque(
            maxlen=windows_for(max(settings.voice.rate_window_s, 10.0))
        )
        # voiced f0 values (semitones re 100 Hz) per window, trimmed to voice_pitch_window_s
        self._pitch_hist: deque[np.ndarray] = deque()
        self._pitch_hist_n = 0

    # ---- streaming -------------------------------------------------------------------------
    def process(self, chunk: AudioChunk) -> list[AudioAnalysis]:
        """Buffer a chunk; return one analysis per window it completes (t = window start)."""
        samples = self._check(chunk)
        if self._t0 is None:
            self._t0 = chunk.t
        expected_t = self._t0 + (self._consumed + self._pending_n) / SAMPLE_RATE
        gap_s = chunk.t - expected_t
        out: list[AudioAnalysis] = []
        if gap_s > _MAX_GAP_FILL_S:
            # A long hole in the media (a reconnect): finish what we have and start a new grid.
            out.extend(self.flush())
            self._t0 = chunk.t
            self._consumed = 0
        elif gap_s >= 1.0 / SAMPLE_RATE:
            # Missing audio is silence: keeps windows and pause times on the media clock.
            self._push(np.zeros(round(gap_s * SAMPLE_RATE), dtype=np.int16))
        elif gap_s <= -1.0 / SAMPLE_RATE:
            samples = samples[min(len(samples), round(-gap_s * SAMPLE_RATE)) :]  # overlap
        self._push(samples)
        while self._pending_n >= self._window_n:
            out.append(self._analyse(self._take(self._window_n), final=False))
        return out

    def flush(self) -> list[AudioAnalysis]:
        """Analyse what is buffered as a last, shorter window (the session ended)."""
        if self._pending_n == 0:
            return []
        return [self._analyse(self._take(self._pending_n), final=True)]

    def _check(self, chunk: AudioChunk) -> np.ndarray:
        if chunk.sample_rate != SAMPLE_RATE:
            raise AudioFormatError(f"audio must be {SAMPLE_RATE} Hz, got {chunk.sample_rate}")
        samples = np.asarray(chunk.samples)
        if samples.ndim != 1 or samples.dtype != np.int16:
            raise AudioFormatError("audio must be 1-D int16 mono samples")
        if not math.isfinite(chunk.t):
            raise AudioFormatError("audio chunk time is not finite")
        return samples

    def _push(self, samples: np.ndarray) -> None:
        if samples.size:
            self._pending.append(samples)
            self._pending_n += samples.size

    def _take(self, n: int) -> np.ndarray:
        buf = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
        window, rest = buf[:n], buf[n:]
        self._pending = [rest] if rest.size else []
        self._pending_n = rest.size
        return window

    # ---- one window ------------------------------------------------------------------------
    def _analyse(self, window: np.ndarray, *, final: bool) -> AudioAnalysis:
        assert self._t0 is not None
        s = self.settings
        t = self._t0 + self._consumed / SAMPLE_RATE
        self._consumed += window.size
        duration = window.size / SAMPLE_RATE
        t_end = t + duration

        speech = self._vad_flags(window)
        speech_n = int(speech.sum())
        speech_ratio = speech_n / len(speech) if len(speech) else 0.0
        speech_s = speech_n * self._frame_s
        pauses = self._update_pauses(t, speech)
        if speech_n:
            speech_samples = window[: len(speech) * self._frame_n].reshape(-1, self._frame_n)[
                speech
            ]
            speech_level: float | None = dbfs(speech_samples.ravel())
        else:
            speech_level = None

        nuclei, f0_st = self._track(t, window, speech, final=final)
        self._rate_hist.append((nuclei, speech_s))
        total_speech = sum(sp for _, sp in self._rate_hist)
        rate = (
            sum(n for n, _ in self._rate_hist) / total_speech
            if total_speech >= s.voice.rate_min_speech_s
            else None
        )
        self._remember_pitch(f0_st)
        pitch_std = self._pitch_std()

        if self._heard_speech:
            pause_s = t_end - self._silence_start if self._silence_start is not None else 0.0
        else:
            pause_s = None
        return AudioAnalysis(
            t=t,
            duration_s=duration,
            level_dbfs=dbfs(window),
            speaking=speech_ratio >= s.voice.speaking_min_ratio,
            speech_ratio=speech_ratio,
            syllables_per_s=rate,
            pitch_semitone_std=pitch_std,
            pause_s=pause_s,
            speech_level_dbfs=speech_level,
            syllable_count=nuclei,
            pause_started_t=self._silence_start if self._heard_speech else None,
            pauses_ended=tuple(pauses),
        )

    def _vad_flags(self, window: np.ndarray) -> np.ndarray:
        n = window.size // self._frame_n
        flags = np.zeros(n, dtype=bool)
        for i in range(n):
            frame = window[i * self._frame_n : (i + 1) * self._frame_n]
            flags[i] = self._vad.is_speech(frame.tobytes(), SAMPLE_RATE)
        return flags

    def _update_pauses(self, t: float, speech: np.ndarray) -> list[PauseSpan]:
        onset = self.settings.voice.vad_onset_frames
        ended: list[PauseSpan] = []
        for i, is_speech in enumerate(speech):
            frame_t = t + i * self._frame_s
            if not is_speech:
                self._speech_run = 0
                if self._silence_start is None:
                    self._silence_start = frame_t
                continue
            self._speech_run += 1
            if self._speech_run < onset:
                continue
            if self._silence_start is not None:
                pause_end = frame_t - (onset - 1) * self._frame_s
                if (
                    self._heard_speech
                    and pause_end - self._silence_start >= self.settings.voice.report_pause_s
                ):
                    ended.append(PauseSpan(self._silence_start, pause_end))
                self._silence_start = None
            self._heard_speech = True
        return ended

    def _track(
        self, t: float, window: np.ndarray, speech: np.ndarray, *, final: bool
    ) -> tuple[int, np.ndarray]:
        """Syllable nuclei counted in this window and the voiced f0 values (semitones)."""
        s = self.settings
        segment = np.concatenate([self._context, window])
        seg_speech = np.concatenate([self._context_speech, speech])
        seg_t = t - self._context.size / SAMPLE_RATE
        self._context = segment[-self._context_n :]
        self._context_speech = seg_speech[-(self._context_n // self._frame_n) :]
        no_f0 = np.zeros(0)
        if not seg_speech.any() or segment.size <= _MIN_TRACK_N:
            return 0, no_f0

        sound = parselmouth.Sound(segment.astype(np.float64) / 32768.0, SAMPLE_RATE)
        pitch = sound.to_pitch_ac(
            time_step=_TRACK_STEP_S,
            pitch_floor=s.voice.pitch_floor_hz,
            pitch_ceiling=s.voice.pitch_ceiling_hz,
        )
        f0 = pitch.selected_array["frequency"]
        f0_t = seg_t + pitch.xs()
        intensity = sound.to_intensity(
            minimum_pitch=_INTENSITY_MIN_PITCH_HZ, time_step=_TRACK_STEP_S, subtract_mean=False
        )
        db = intensity.values[0]
        db_t = seg_t + intensity.xs()

        def in_speech(times: np.ndarray) -> np.ndarray:
            idx = np.clip(((times - seg_t) / self._frame_s).astype(int), 0, len(seg_speech) - 1)
            return seg_speech[idx]

        # f0 of voiced speech frames of this window proper (the context was counted before)
        mine = (f0_t >= t) & (f0 > 0) & in_speech(f0_t)
        f0_st = 12.0 * np.log2(f0[mine] / 100.0)

        # loudness reference: 99th percentile of the speech intensity of the last seconds
        speech_db = db[(db_t >= t) & in_speech(db_t)]
        if speech_db.size:
            self._loud_hist.append(float(np.quantile(speech_db, 0.99)))
        if not self._loud_hist or db.size < 3:
            return 0, f0_st
        floor_db = max(self._loud_hist) - s.voice.syllable_silence_db

        lag = 0.0 if final else _NUCLEUS_LAG_S
        count_from, count_to = t - _NUCLEUS_LAG_S, t + window.size / SAMPLE_RATE - lag
        peaks = np.flatnonzero((db[1:-1] > db[:-2]) & (db[1:-1] >= db[2:])) + 1
        peaks = peaks[db[peaks] >= floor_db]
        nuclei = 0
        for k, p in enumerate(peaks):
            if not count_from <= db_t[p] < count_to:
                continue
            following = peaks[k + 1] if k + 1 < len(peaks) else len(db)
            dip = float(db[p:following].min()) if following > p + 1 else float(db[p])
            if db[p] - dip < s.voice.syllable_min_dip_db:
                continue
            if not in_speech(db_t[p : p + 1])[0]:
                continue
            f0_i = int(np.clip(np.searchsorted(f0_t, db_t[p]), 0, len(f0) - 1))
            if f0[f0_i] <= 0 and f0[max(0, f0_i - 1)] <= 0:
                continue
            nuclei += 1
        return nuclei, f0_st

    def _remember_pitch(self, f0_st: np.ndarray) -> None:
        if f0_st.size == 0:
            return
        self._pitch_hist.append(f0_st)
        self._pitch_hist_n += f0_st.size
        keep_n = round(self.settings.voice.pitch_window_s / _TRACK_STEP_S)
        while self._pitch_hist_n - self._pitch_hist[0].size >= keep_n:
            self._pitch_hist_n -= self._pitch_hist.popleft().size

    def _pitch_std(self) -> float | None:
        s = self.settings
        values = np.concatenate(list(self._pitch_hist)) if self._pitch_hist else np.zeros(0)
        if values.size * _TRACK_STEP_S < s.voice.pitch_min_voiced_s:
            return None
        values = values[np.abs(values - np.median(values)) < _OCTAVE_ERROR_ST]
        if values.size * _TRACK_STEP_S < s.voice.pitch_min_voiced_s:
            return None
        return float(np.std(values))


# ---- cues and score ----------------------------------------------------------------------
def voice_conditions(
    a: AudioAnalysis, language: Lang, settings: Settings
) -> dict[CueName, bool | None]:
    """Whether each voice problem holds in this window; None where it cannot be told.

    too_quiet and monotone need speech in the window; too_fast needs enough recent speech for
    a rate; long_pause needs the talk to have started (silence before the first word is not a
    pause).
    """
    limits = settings.voice.thresholds(language)
    speaking = bool(a.speaking)
    too_quiet: bool | None = None
    if speaking and a.speech_level_dbfs is not None:
        too_quiet = a.speech_level_dbfs < limits.quiet_dbfs
    too_fast: bool | None = None
    if a.syllables_per_s is not None:
        too_fast = a.syllables_per_s > limits.too_fast_syllables_per_s
    long_pause: bool | None = None
    if a.pause_s is not None:
        long_pause = a.pause_s >= limits.long_pause_s
    monotone: bool | None = None
    if speaking and a.pitch_semitone_std is not None:
        monotone = a.pitch_semitone_std < limits.monotone_semitones
    return {
        "too_quiet": too_quiet,
        "too_fast": too_fast,
        "long_pause": long_pause,
        "monotone": monotone,
    }
