// The child process that loads a model with onnxruntime-node and measures it. It runs apart from the
// operator so that a hostile or broken model file that crashes or hangs the native runtime ends this
// process, not the operator. Protocol: one request on IPC, one reply, then exit.
import { performance } from 'node:perf_hooks';
import type { ModelSignature } from './contract.ts';
import { openSession, sessionSignature } from './session.ts';
import { type ElementType, inputTensor } from './tensors.ts';

export interface RunnerRequest {
  /** Sent over IPC with advanced serialisation: a copy of the bytes, no base64 string (V8 caps strings). */
  model: Uint8Array;
  executionProviders: string[];
  /** Vectors to label, all of them, in one batch. */
  vectors: number[][];
  inputName?: string;
  outputName?: string;
  elementType?: ElementType;
  /** Single-vector runs for the latency figures. */
  latencyRuns: number;
}

export type RunnerReply =
  | {
      ok: true;
      signature: ModelSignature;
      executionProvider: string;
      probabilities?: number[][];
      latenciesMs?: number[];
      sessionMemoryMiB: number;
    }
  | { ok: false; stage: 'load' | 'run'; message: string };

async function handle(request: RunnerRequest): Promise<RunnerReply> {
  const bytes = request.model;
  const rssBefore = process.memoryUsage().rss;
  const opened = await openSession(bytes, request.executionProviders);
  if (!opened.ok) return { ok: false, stage: 'load', message: opened.message };
  const { session, provider: executionProvider } = opened;
  const sessionMemoryMiB = Math.max(0, process.memoryUsage().rss - rssBefore) / 2 ** 20;
  const signature = sessionSignature(session);
  // Names the graph does not have are a contract problem for the caller to report, not a run to fail.
  const runnable =
    request.inputName !== undefined &&
    request.outputName !== undefined &&
    session.inputNames.includes(request.inputName) &&
    session.outputNames.includes(request.outputName);
  if (!runnable || !request.inputName || !request.outputName || request.vectors.length === 0) {
    return { ok: true, signature, executionProvider, sessionMemoryMiB };
  }
  try {
    const feeds = { [request.inputName]: inputTensor(request.elementType, request.vectors) };
    const out = await session.run(feeds);
    const result = out[request.outputName];
    if (!result)
      return { ok: false, stage: 'run', message: `the model gave no output '${request.outputName}'` };
    const data = Array.from(result.data as Float32Array, Number);
    const width = data.length / request.vectors.length;
    const probabilities = request.vectors.map((_, i) => data.slice(i * width, (i + 1) * width));
    const latenciesMs: number[] = [];
    for (let i = 0; i < request.latencyRuns; i++) {
      const one = {
        [request.inputName]: inputTensor(request.elementType, [
          request.vectors[i % request.vectors.length] as number[],
        ]),
      };
      const t0 = performance.now();
      await session.run(one);
      latenciesMs.push(performance.now() - t0);
    }
    return { ok: true, signature, executionProvider, probabilities, latenciesMs, sessionMemoryMiB };
  } catch (err) {
    return { ok: false, stage: 'run', message: (err as Error).message.slice(0, 500) };
  }
}

process.once('message', (request: RunnerRequest) => {
  handle(request)
    .then((reply) => process.send?.(reply, () => process.exit(0)))
    .catch((err: Error) =>
      process.send?.({ ok: false, stage: 'load', message: err.message }, () => process.exit(0)),
    );
});
