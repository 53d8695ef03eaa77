import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { exampleModelFiles } from '../../hack/example-model/generate.ts';
import { nonFiniteModel } from '../../hack/example-model/hostile.ts';
import { withInputType } from '../../hack/example-model/onnx.ts';
import { freePort } from '../../hack/local-cluster/control-plane.ts';
import { sha256 } from '../../model/source.ts';
import { podUnifiedMemoryMiB } from '../../placement/unified-memory.ts';

const root = join(import.meta.dirname, '../..');
const spec = parse(readFileSync(join(root, 'examples/triage-model.yaml'), 'utf8')).spec;
const modelSpec = JSON.stringify({
  version: spec.version,
  inputs: spec.inputs,
  outputs: spec.outputs,
  executionProviders: spec.executionProviders,
});
const modelBytes = readFileSync(exampleModelFiles.model);
const golden = readFileSync(exampleModelFiles.goldenVectors, 'utf8')
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l) as { features: number[]; expectedLabel: string });
const names: string[] = spec.inputs.features.map((f: { name: string }) => f.name);
const asBody = (features: number[]) => ({
  features: Object.fromEntries(names.map((n, i) => [n, features[i]])),
});

function startServer(env: Record<string, string>): {
  child: ChildProcess;
  output: () => string;
  exit: Promise<number | null>;
} {
  let output = '';
  const child = spawn(process.execPath, [join(root, 'workloads/triage-server/main.ts')], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (c: Buffer) => {
    output += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    output += c.toString();
  });
  const exit = new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { child, output: () => output, exit };
}

let base: string;
let server: ReturnType<typeof startServer>;
beforeAll(async () => {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  server = startServer({
    AURORA_MODEL_FILE: exampleModelFiles.model,
    AURORA_MODEL_SHA256: sha256(modelBytes),
    AURORA_MODEL_SPEC: modelSpec,
    AURORA_PORT: String(port),
    AURORA_BATCH_WINDOW_MS: '5',
  });
  await waitReady(base, server);
}, 30_000);

async function waitReady(url: string, started: ReturnType<typeof startServer>) {
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(`${url}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the triage server never became ready:\n${started.output()}`);
}
afterAll(() => {
  server?.child.kill('SIGTERM');
});

interface Reply {
  label: string;
  probabilities: Record<string, number>;
  modelVersion: string;
  modelDigest: string;
  error?: string;
  version?: string;
}
const json = async (res: Response) => (await res.json()) as Reply;

const classify = (body: unknown) =>
  fetch(`${base}/v1/classify`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

describe('the triage server, as a process with the example model', () => {
  it('gives every golden vector the label onnxruntime gives it, batching concurrent requests', async () => {
    const session = await ort.InferenceSession.create(modelBytes);
    const out = await session.run({
      vitals: new ort.Tensor('float32', Float32Array.from(golden.flatMap((g) => g.features)), [
        golden.length,
        7,
      ]),
    });
    const probs = out.probabilities?.data as Float32Array;
    const direct = golden.map((_, i) => {
      const row = Array.from(probs.subarray(i * 4, i * 4 + 4));
      return spec.outputs.labels[row.indexOf(Math.max(...row))];
    });
    const replies = await Promise.all(golden.map((g) => classify(asBody(g.features)).then(json)));
    expect(replies.map((r) => r.label)).toEqual(direct);
    const accuracy = replies.filter((r, i) => r.label === golden[i]?.expectedLabel).length / golden.length;
    expect(accuracy).toBeGreaterThan(0.95);
    expect(replies[0]).toMatchObject({ modelVersion: '1.0.0', modelDigest: `sha256:${sha256(modelBytes)}` });
    expect(Object.keys(replies[0]?.probabilities ?? {})).toEqual(spec.outputs.labels);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    const batches = Number(metrics.match(/aurora_triage_batch_size_count (\d+)/)?.[1]);
    expect(batches).toBeGreaterThan(0);
    expect(batches).toBeLessThan(golden.length);
  });

  it.each([
    ['a missing feature', { features: { spo2: 97 } }, /^features\.respiration_rate: required$/],
    ['a value out of range', asBody([16, 40, 0, 120, 70, 0, 37]), /^features\.spo2: must be at least 50 %$/],
    [
      'a string',
      { features: { ...asBody([16, 97, 0, 120, 70, 0, 37]).features, pulse: 'fast' } },
      /^features\.pulse: must be a number$/,
    ],
    [
      'an unknown feature',
      { features: { ...asBody([16, 97, 0, 120, 70, 0, 37]).features, lactate: 2 } },
      /^features\.lactate: not a feature/,
    ],
  ])('answers 400 naming the field for %s', async (_name, body, message) => {
    const res = await classify(body);
    expect(res.status).toBe(400);
    expect((await json(res)).error).toMatch(message);
  });

  it.skipIf(process.platform !== 'linux')(
    'stays within the memory a pool pod reserves for it, after serving every golden vector',
    () => {
      const status = readFileSync(`/proc/${server.child.pid}/status`, 'utf8');
      const rssMiB = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]) / 1024;
      // The model session itself measures about 23 MiB in validation (TriageModel status).
      const reservedMiB = podUnifiedMemoryMiB(23, 0);
      process.stdout.write(`  triage server RSS ${rssMiB.toFixed(1)} MiB, pod reserves ${reservedMiB} MiB\n`);
      expect(rssMiB).toBeGreaterThan(20);
      expect(rssMiB).toBeLessThan(reservedMiB);
    },
  );

  it('answers 400 for a body that is not JSON, and reports the model it serves', async () => {
    const res = await fetch(`${base}/v1/classify`, { method: 'POST', body: '{"features":' });
    expect([res.status, (await json(res)).error]).toEqual([400, 'the body is not JSON']);
    const model = await json(await fetch(`${base}/v1/model`));
    expect(model).toMatchObject({
      version: '1.0.0',
      executionProvider: process.platform === 'darwin' ? 'coreml' : 'cpu',
    });
  });

  it('never reports ready with a model file whose digest is not the one pinned', async () => {
    const port = await freePort();
    const wrong = startServer({
      AURORA_MODEL_FILE: exampleModelFiles.underTriage,
      AURORA_MODEL_SHA256: sha256(modelBytes),
      AURORA_MODEL_SPEC: modelSpec,
      AURORA_PORT: String(port),
    });
    expect(await wrong.exit).toBe(1);
    expect(wrong.output()).toMatch(
      /the model file has sha256 [0-9a-f]{64}, AURORA_MODEL_SHA256 is [0-9a-f]{64}/,
    );
  });

  it('downloads a model served over HTTP, checks its digest, then serves it; a wrong file is fatal', async () => {
    const files = createServer((req, res) => {
      const body =
        req.url === '/er.onnx'
          ? modelBytes
          : req.url === '/other.onnx'
            ? readFileSync(exampleModelFiles.underTriage)
            : undefined;
      if (!body) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-length': body.length }).end(body);
    });
    await new Promise<void>((resolve) => files.listen(0, '127.0.0.1', resolve));
    const at = `http://127.0.0.1:${(files.address() as AddressInfo).port}`;
    const start = async (path: string) => {
      const port = await freePort();
      const started = startServer({
        AURORA_MODEL_URL: `${at}${path}`,
        // The test's file server listens on loopback, which the server refuses unless told otherwise.
        AURORA_MODEL_ALLOW_LOOPBACK: 'true',
        AURORA_MODEL_SHA256: sha256(modelBytes),
        AURORA_MODEL_SPEC: modelSpec,
        AURORA_PORT: String(port),
      });
      return { started, url: `http://127.0.0.1:${port}` };
    };
    const good = await start('/er.onnx');
    try {
      await waitReady(good.url, good.started);
      const [first] = golden;
      const res = await fetch(`${good.url}/v1/classify`, {
        method: 'POST',
        body: JSON.stringify(asBody(first?.features ?? [])),
      });
      expect(res.status).toBe(200);
      expect((await json(res)).modelDigest).toBe(`sha256:${sha256(modelBytes)}`);
    } finally {
      good.started.child.kill('SIGTERM');
    }
    const bad = await start('/other.onnx');
    expect(await bad.started.exit).toBe(1);
    expect(bad.started.output()).toMatch(/has sha256 [0-9a-f]{64}/);
    files.close();
  });

  /** A server of its own on a model file, ready before it returns. */
  async function serverOn(file: string, settings: Record<string, string> = {}, contract = modelSpec) {
    const port = await freePort();
    const started = startServer({
      AURORA_MODEL_FILE: file,
      AURORA_MODEL_SHA256: sha256(readFileSync(file)),
      AURORA_MODEL_SPEC: contract,
      AURORA_PORT: String(port),
      ...settings,
    });
    const url = `http://127.0.0.1:${port}`;
    await waitReady(url, started);
    const ask = (features: number[]) =>
      fetch(`${url}/v1/classify`, { method: 'POST', body: JSON.stringify(asBody(features)) });
    return { started, url, ask };
  }
  const dir = mkdtempSync(join(tmpdir(), 'aurora-server-'));
  const file = (name: string, bytes: Uint8Array) => {
    const path = join(dir, name);
    writeFileSync(path, bytes);
    return path;
  };

  it.each(['float64', 'int64'] as const)(
    'serves a model that takes %s with the labels the float model gives',
    async (type) => {
      const typed = await serverOn(
        file(`${type}.onnx`, withInputType(modelBytes, type)),
        {},
        JSON.stringify({ ...JSON.parse(modelSpec), inputs: { ...spec.inputs, elementType: type } }),
      );
      try {
        const vectors = golden
          .slice(0, 60)
          .map((g) => (type === 'int64' ? g.features.map(Math.round) : g.features));
        const typedLabels = await Promise.all(vectors.map((v) => typed.ask(v).then(json)));
        const floatLabels = await Promise.all(vectors.map((v) => classify(asBody(v)).then(json)));
        expect(typedLabels.map((r) => r.label)).toEqual(floatLabels.map((r) => r.label));
        if (type === 'int64') {
          const res = await typed.ask([16, 97, 0, 120, 70.5, 0, 37]);
          expect([res.status, (await json(res)).error]).toEqual([
            400,
            'features.pulse: must be a whole number (the model takes int64)',
          ]);
        }
      } finally {
        typed.started.child.kill('SIGTERM');
      }
    },
  );

  it('answers 500, never a 200 without a label, when the model gives a non-finite answer', async () => {
    const broken = await serverOn(file('non-finite.onnx', nonFiniteModel()));
    try {
      const onOxygen = await broken.ask([16, 97, 1, 120, 70, 0, 37]);
      expect(onOxygen.status).toBe(200);
      const notOnOxygen = await broken.ask([16, 97, 0, 120, 70, 0, 37]);
      expect([notOnOxygen.status, (await json(notOnOxygen)).error]).toEqual([
        500,
        'the model gave no usable answer',
      ]);
    } finally {
      broken.started.child.kill('SIGTERM');
    }
  });

  it('answers 503 with Retry-After when as many requests as it takes are in flight', async () => {
    const busy = await serverOn(exampleModelFiles.model, {
      AURORA_MAX_IN_FLIGHT: '2',
      AURORA_BATCH_WINDOW_MS: '400',
    });
    try {
      const [g1, g2, g3] = golden;
      const first = [busy.ask(g1?.features ?? []), busy.ask(g2?.features ?? [])];
      await new Promise((r) => setTimeout(r, 100));
      const third = await busy.ask(g3?.features ?? []);
      expect(third.status).toBe(503);
      expect(third.headers.get('retry-after')).toBe('1');
      expect((await Promise.all(first)).map((r) => r.status)).toEqual([200, 200]);
    } finally {
      busy.started.child.kill('SIGTERM');
    }
  });

  it('drains on SIGTERM: readiness fails at once, requests are answered for the drain delay, then it exits', async () => {
    const leaving = await serverOn(exampleModelFiles.model, {
      AURORA_BATCH_WINDOW_MS: '500',
      AURORA_DRAIN_DELAY_SECONDS: '1',
    });
    const [g, h] = golden;
    const inFlight = leaving.ask(g?.features ?? []);
    await new Promise((r) => setTimeout(r, 100));
    const t0 = performance.now();
    leaving.started.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    // Endpoints have not caught up yet: a request that still comes is answered, readiness says go away.
    const ready = await fetch(`${leaving.url}/readyz`);
    expect([ready.status, await ready.text()]).toEqual([503, 'draining']);
    const late = await leaving.ask(h?.features ?? []);
    expect(late.status).toBe(200);
    const answered = await inFlight;
    expect(answered.status).toBe(200);
    expect((await json(answered)).label).toBeDefined();
    expect(await leaving.started.exit).toBe(0);
    const tookMs = performance.now() - t0;
    expect(tookMs).toBeGreaterThanOrEqual(1000);
    expect(tookMs).toBeLessThan(5000);
  });

  it('never becomes ready with a model that cannot answer the readiness probe', async () => {
    const port = await freePort();
    const hopeless = startServer({
      AURORA_MODEL_FILE: file('probe-fails.onnx', nonFiniteModel(-0.5)),
      AURORA_MODEL_SHA256: sha256(nonFiniteModel(-0.5)),
      AURORA_MODEL_SPEC: modelSpec,
      AURORA_PORT: String(port),
    });
    expect(await hopeless.exit).toBe(1);
    expect(hopeless.output()).toMatch(/no usable answer to the readiness probe/);
  });
});
