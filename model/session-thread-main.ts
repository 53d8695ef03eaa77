// The model thread's own code (see session-thread.ts): opens the session, then runs what it is sent,
// one at a time. Errors go back to the caller as messages; they never end the thread.
import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import { openSession, sessionSignature } from './session.ts';
import type { ThreadReply, ThreadRequest } from './session-thread.ts';

const { bytes, providers } = workerData as { bytes: Uint8Array; providers: string[] };
const port = parentPort;
const reply = (message: ThreadReply) => port?.postMessage(message);

const opened = await openSession(bytes, providers);
if (!opened.ok) {
  reply({ kind: 'opened', ok: false, message: opened.message, skipped: opened.skipped });
} else {
  const { session } = opened;
  port?.on('message', async (request: ThreadRequest) => {
    if (request.kind === 'release') {
      await session.release().catch(() => {});
      reply({ kind: 'released' });
      return;
    }
    const { id, input } = request;
    try {
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
  });
  reply({
    kind: 'opened',
    ok: true,
    provider: opened.provider,
    signature: sessionSignature(session),
    skipped: opened.skipped,
  });
}
