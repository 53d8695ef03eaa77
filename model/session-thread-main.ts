// The model thread's own code (see session-thread.ts): opens the session from the first message, then
// serves what it is sent strictly in order (onnxruntime-node defers each run, so handling messages as
// they come could release the session under runs received before the release). Expected failures (of
// an open or a run) go back as messages; anything else ends the thread, and the caller hears of it.
import { parentPort } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import { openSession, sessionSignature } from './session.ts';
import type { ThreadReply, ThreadRequest } from './session-thread.ts';

const port = parentPort;
const reply = (message: ThreadReply) => port?.postMessage(message);
let session: ort.InferenceSession | undefined;

async function handle(request: ThreadRequest): Promise<void> {
  if (request.kind === 'open') {
    // The bytes are not kept: once onnxruntime holds the model, they can be collected.
    const opened = await openSession(request.bytes, request.providers);
    if (!opened.ok) {
      reply({ kind: 'opened', ok: false, message: opened.message, skipped: opened.skipped });
      return;
    }
    session = opened.session;
    reply({
      kind: 'opened',
      ok: true,
      provider: opened.provider,
      signature: sessionSignature(session),
      skipped: opened.skipped,
    });
    return;
  }
  if (request.kind === 'release') {
    await session?.release().catch(() => {});
    session = undefined;
    reply({ kind: 'released' });
    return;
  }
  const { id, input } = request;
  try {
    if (!session) throw new Error('the session is not open');
    const out = await session.run({
      [request.inputName]: new ort.Tensor(input.type, input.data, input.dims),
    });
    const tensor = out[request.outputName];
    reply({
      kind: 'ran',
      id,
      ok: true,
      ...(tensor ? { output: { data: tensor.data, dims: tensor.dims } } : {}),
    });
  } catch (err) {
    reply({ kind: 'ran', id, ok: false, message: (err as Error).message.slice(0, 500) });
  }
}

let turn = Promise.resolve();
port?.on('message', (request: ThreadRequest) => {
  // handle() answers every failure it expects; anything else ends the thread (the caller hears of it)
  // rather than leaving the chain broken and every later run unanswered.
  turn = turn
    .then(() => handle(request))
    .catch((err: unknown) => {
      setImmediate(() => {
        throw err;
      });
    });
});
