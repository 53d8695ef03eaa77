import { readFileSync } from 'node:fs';
import ort from 'onnxruntime-node';
import { describe, expect, it, vi } from 'vitest';
import { exampleGoldenFeatures, exampleModelFiles } from '../hack/example-model/generate.ts';
import { openSessionOnThread } from './session-thread.ts';
import { inputData, inputTensor } from './tensors.ts';

const features = exampleGoldenFeatures();

describe('openSessionOnThread', () => {
  it('answers as a session on this thread does, and says what the model takes and gives', async () => {
    const bytes = readFileSync(exampleModelFiles.model);
    const here = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'] });
    const expected = (await here.run({ vitals: inputTensor('float32', features) })).probabilities?.data;
    const expectedOne = (await here.run({ vitals: inputTensor('float32', features.slice(0, 1)) }))
      .probabilities?.data;
    await here.release();
    // A view into a larger buffer (as a pooled Buffer is) is copied before it moves to the thread.
    const padded = new Uint8Array(bytes.length + 16);
    padded.set(bytes, 8);
    const onLost = vi.fn();
    const opened = await openSessionOnThread(padded.subarray(8, 8 + bytes.length), ['cpu'], { onLost });
    expect(padded.byteLength).toBe(bytes.length + 16);
    if (!opened.ok) throw new Error(opened.message);
    const { session } = opened;
    expect(session.provider).toBe('cpu');
    expect(session.signature.inputs.map((t) => t.name)).toEqual(['vitals']);
    expect(session.signature.outputs.map((t) => t.name)).toEqual(['probabilities']);
    // Several runs at once are answered each with its own rows.
    const [all, first] = await Promise.all([
      session.run('vitals', inputData('float32', features), 'probabilities'),
      session.run('vitals', inputData('float32', features.slice(0, 1)), 'probabilities'),
    ]);
    expect(Array.from(all?.data as Float32Array)).toEqual(Array.from(expected as Float32Array));
    expect(Array.from(first?.data as Float32Array)).toEqual(Array.from(expectedOne as Float32Array));
    expect(first?.dims).toEqual([1, 4]);
    // A run sent before close() is answered before the session is released; closing twice waits for the
    // same end, hears of no loss, and a run after it fails at once.
    const lastRun = session.run('vitals', inputData('float32', features.slice(0, 1)), 'probabilities');
    await Promise.all([session.close(), session.close()]);
    expect((await lastRun)?.dims).toEqual([1, 4]);
    expect(onLost).not.toHaveBeenCalled();
    await expect(session.run('vitals', inputData('float32', features), 'probabilities')).rejects.toThrow(
      /model thread ended/,
    );
  });

  it("gives a failed run's error to its caller and goes on serving", async () => {
    const opened = await openSessionOnThread(readFileSync(exampleModelFiles.model), ['cpu']);
    if (!opened.ok) throw new Error(opened.message);
    const { session } = opened;
    await expect(
      session.run('not-an-input', inputData('float32', features), 'probabilities'),
    ).rejects.toThrow(/'vitals' is missing/);
    await expect(session.run('vitals', inputData('float32', [[1, 2, 3]]), 'probabilities')).rejects.toThrow();
    const after = await session.run('vitals', inputData('float32', features.slice(0, 2)), 'probabilities');
    expect(after?.data.length).toBe(8);
    expect(await session.run('vitals', inputData('float32', features.slice(0, 2)), 'no-such-output')).toBe(
      undefined,
    );
    await session.close();
  });

  it('says why a file that is not a model cannot be opened, on every provider tried', async () => {
    const opened = await openSessionOnThread(new TextEncoder().encode('not a model'), ['cpu']);
    expect(opened.ok).toBe(false);
    if (opened.ok) return;
    expect(opened.message.length).toBeGreaterThan(0);
    expect(opened.skipped.map((s) => s.provider)).toEqual(['cpu']);
  });
});
