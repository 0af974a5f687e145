// A small canvas line chart of the last `windowS` seconds: a few series of values in 0..1
// (null draws a gap). Colours come from CSS custom properties, so the stylesheet owns them.

export class LiveChart {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {{key: string, colorVar: string}[]} series
   * @param {number} windowS
   */
  constructor(canvas, series, windowS = 60) {
    this.canvas = canvas;
    this.series = series.map((s) => ({ ...s, points: [] }));
    this.windowS = windowS;
    this.now = 0;
    this.frame = 0;
  }

  /** Add a sample of `key` at time `t` (seconds). */
  push(key, t, value) {
    const s = this.series.find((x) => x.key === key);
    if (!s) return;
    s.points.push({ t, v: value == null ? null : Math.max(0, Math.min(1, value)) });
    this.now = Math.max(this.now, t);
    const oldest = this.now - this.windowS - 2;
    while (s.points.length && s.points[0].t < oldest) s.points.shift();
    this.schedule();
  }

  tick(t) {
    this.now = Math.max(this.now, t);
    this.schedule();
  }

  reset() {
    for (const s of this.series) s.points = [];
    this.now = 0;
    this.schedule();
  }

  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }

  draw() {
    const canvas = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const cssW = canvas.clientWidth || 300;
    const cssH = canvas.clientHeight || 120;
    if (canvas.width !== Math.round(cssW * dpr) || canvas.height !== Math.round(cssH * dpr)) {
      canvas.width = Math.round(cssW * dpr);
      canvas.height = Math.round(cssH * dpr);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, cssW, cssH);
    const style = getComputedStyle(canvas);
    const pad = 4;
    const w = cssW - 2 * pad;
    const h = cssH - 2 * pad;
    // Anchored right: "now" is the right edge and older samples scroll off to the left.
    const start = this.now - this.windowS;
    const x = (t) => pad + ((t - start) / this.windowS) * w;
    const y = (v) => pad + (1 - v) * h;

    // Grid: a line every 10 s and at 50 %.
    ctx.strokeStyle = style.getPropertyValue("--chart-grid").trim() || "#333";
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (let g = Math.max(0, Math.ceil(start / 10) * 10); g <= this.now; g += 10) {
      ctx.moveTo(Math.round(x(g)) + 0.5, pad);
      ctx.lineTo(Math.round(x(g)) + 0.5, pad + h);
    }
    ctx.moveTo(pad, Math.round(y(0.5)) + 0.5);
    ctx.lineTo(pad + w, Math.round(y(0.5)) + 0.5);
    ctx.stroke();

    ctx.lineWidth = 2;
    ctx.lineJoin = "round";
    for (const s of this.series) {
      ctx.strokeStyle = style.getPropertyValue(s.colorVar).trim() || "#fff";
      ctx.beginPath();
      let pen = false;
      for (const p of s.points) {
        if (p.t < start - 1) continue;
        if (p.v == null) {
          pen = false;
          continue;
        }
        if (pen) ctx.lineTo(x(p.t), y(p.v));
        else ctx.moveTo(x(p.t), y(p.v));
        pen = true;
      }
      ctx.stroke();
    }
  }
}
