import ort from 'onnxruntime-node';
import type { ModelSignature, TensorInfo } from './contract.ts';

export type OpenedSession =
  | {
      ok: true;
      session: ort.InferenceSession;
      provider: string;
      skipped: Array<{ provider: string; message: string }>;
    }
  | { ok: false; message: string; skipped: Array<{ provider: string; message: string }> };

/**
 * Opens a session with the first execution provider in order that loads the model. An unavailable
 * provider (CoreML off macOS) falls through to the next; a bad model fails on all, and the last
 * provider's error says why.
 */
export async function openSession(bytes: Uint8Array, providers: readonly string[]): Promise<OpenedSession> {
  const skipped: Array<{ provider: string; message: string }> = [];
  for (const provider of providers) {
    try {
      const session = await ort.InferenceSession.create(bytes, { executionProviders: [provider] });
      return { ok: true, session, provider, skipped };
    } catch (err) {
      skipped.push({ provider, message: (err as Error).message.slice(0, 500) });
    }
  }
  return { ok: false, message: skipped.at(-1)?.message ?? 'no execution provider was given', skipped };
}

/** What an onnxruntime session says of its inputs and outputs, in the shape checkContract reads. */
export function sessionSignature(session: ort.InferenceSession): ModelSignature {
  const info = (name: string, meta: unknown): TensorInfo => {
    const m = meta as { type?: string; shape?: ReadonlyArray<number | string> };
    return { name, type: m?.type ?? 'unknown', shape: [...(m?.shape ?? [])] };
  };
  return {
    inputs: session.inputNames.map((n, i) => info(n, session.inputMetadata[i])),
    outputs: session.outputNames.map((n, i) => info(n, session.outputMetadata[i])),
  };
}
