// AudioWorklet: the microphone, resampled to 16 kHz Int16 chunks posted to the main thread.
import { Pcm16kResampler } from "./pcm.js";

class Pcm16kProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const chunkSamples = options.processorOptions?.chunkSamples ?? 1600;
    // `sampleRate` is the AudioWorkletGlobalScope's: the context's rate.
    this.resampler = new Pcm16kResampler(sampleRate, chunkSamples, (chunk) =>
      this.port.postMessage(chunk.buffer, [chunk.buffer]),
    );
  }

  process(inputs) {
    const channel = inputs[0]?.[0];
    if (channel) this.resampler.push(channel);
    return true;
  }
}

registerProcessor("pcm16k", Pcm16kProcessor);
