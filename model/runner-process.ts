// The child process that loads a model with onnxruntime-node and measures it. It runs apart from
// everything else, under its own memory bound, so that a hostile or broken model file that crashes,
// hangs or floods the native runtime ends this process only. Protocol: one request on IPC, one reply,
// then exit.
import { readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { externalTensors } from './external-data.ts';
import { failure, type RunnerReply, type RunnerRequest } from './runner-protocol.ts';
import { openSession, sessionSignature } from './session.ts';
import { inputTensor, outputRows } from './tensors.ts';

async function handle(request: RunnerRequest): Promise<RunnerReply> {
  const bytes = request.model instanceof Uint8Array ? request.model : await readFile(request.model.path);
  let external: string[];
  try {
    external = externalTensors(bytes);
  } catch {
    // Not a model onnxruntime could read either; the loader below says why in its own words.
    external = [];
  }
  if (external.length > 0) {
    return failure(
      'load',
      `the model keeps ${external.length} tensor(s) in external data files (${external.slice(0, 3).join(', ')}), which Aurora refuses: an external path can name any file the loader can read; save the model with every tensor inside the .onnx file`,
    );
  }
  const rssBefore = process.memoryUsage().rss;
  const opened = await openSession(bytes, request.executionProviders);
  if (!opened.ok) return failure('load', opened.message);
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
    // A model's output need not be the shape it declares: anything but one row of labels per vector
    // is refused before it is copied, so a hostile model cannot answer with gigabytes.
    const width = request.outputWidth ?? result.data.length / request.vectors.length;
    const probabilities = outputRows(result, request.vectors.length, width);
    if (!probabilities) {
      return failure(
        'run',
        `the model gave ${result.data.length} values for ${request.vectors.length} vectors; the contract expects ${width} per vector`,
      );
    }
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
    return failure('run', (err as Error).message);
  }
}

process.once('message', (request: RunnerRequest) => {
  handle(request)
    .then((reply) => process.send?.(reply, () => process.exit(0)))
    .catch((err: Error) => process.send?.(failure('load', err.message), () => process.exit(0)));
});
