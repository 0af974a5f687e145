// Microphone samples to what the contract's `AUD1` messages carry: 16 kHz mono 16-bit PCM.
// Shared by the AudioWorklet (pcm-worklet.js) and the ScriptProcessor fallback.

/** Float samples at `rate` to 16 kHz Int16 chunks: box-filter average, then pick. */
export class Pcm16kResampler {
  constructor(rate, chunkSamples, onChunk) {
    this.step = rate / 16000;
    this.pos = 0; // fractional position of the next output sample in the input stream
    this.acc = 0;
    this.count = 0;
    this.out = new Int16Array(chunkSamples);
    this.n = 0;
    this.onChunk = onChunk;
  }

  push(input) {
    for (let i = 0; i < input.length; i += 1) {
      this.acc += input[i];
      this.count += 1;
      this.pos += 1;
      if (this.pos >= this.step) {
        this.pos -= this.step;
        const v = Math.max(-1, Math.min(1, this.acc / this.count));
        this.out[this.n] = v < 0 ? v * 0x8000 : v * 0x7fff;
        this.n += 1;
        this.acc = 0;
        this.count = 0;
        if (this.n === this.out.length) {
          this.onChunk(this.out.slice());
          this.n = 0;
        }
      }
    }
  }
}
