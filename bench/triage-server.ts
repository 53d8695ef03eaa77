// The triage server over HTTP next to raw onnxruntime-node, same model, same machine, same run.
// Usage: node bench/triage-server.ts [--seconds 5] [--concurrency 32]
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import { Pool } from 'undici';
import { parse } from 'yaml';
import { exampleGoldenFeatures, exampleModelFiles } from '../hack/example-model/generate.ts';
import { freePort, repoRoot } from '../hack/local-cluster/control-plane.ts';
import { percentile } from '../model/acceptance.ts';
import { sha256 } from '../model/source.ts';

const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '5' }, concurrency: { type: 'string', default: '32' } },
});
const budgetMs = Number(values.seconds) * 1000;
const concurrency = Number(values.concurrency);
const spec = parse(readFileSync(join(repoRoot, 'examples/triage-model.yaml'), 'utf8')).spec;
const model = readFileSync(exampleModelFiles.model);
const vectors = exampleGoldenFeatures();
const names: string[] = spec.inputs.features.map((f: { name: string }) => f.name);

console.log(
  `Triage server benchmark: ${concurrency} concurrent HTTP clients, ${budgetMs / 1000} s per figure`,
);

// 1. Raw onnxruntime: the same requests, one at a time and in batches of 16, in this process.
const session = await ort.InferenceSession.create(model, { executionProviders: ['cpu'] });
const tensor = (rows: number[][]) =>
  new ort.Tensor('float32', Float32Array.from(rows.flat()), [rows.length, 7]);
let rows = 0;
let start = performance.now();
while (performance.now() - start < budgetMs) {
  await session.run({ vitals: tensor([vectors[rows % vectors.length] as number[]]) });
  rows++;
}
const rawSingle = rows / ((performance.now() - start) / 1000);
rows = 0;
start = performance.now();
while (performance.now() - start < budgetMs) {
  await session.run({
    vitals: tensor(Array.from({ length: 16 }, (_, i) => vectors[(rows + i) % vectors.length] as number[])),
  });
  rows += 16;
}
const rawBatched = rows / ((performance.now() - start) / 1000);
console.log(
  `  onnxruntime-node direct: ${Math.round(rawSingle)} requests/s one at a time, ${Math.round(rawBatched)}/s in batches of 16`,
);

const bodies = vectors.map((v) =>
  JSON.stringify({ features: Object.fromEntries(names.map((n, i) => [n, v[i]])) }),
);

/** The same load, through the same client, against a server at port: throughput, p50 and p99. */
async function load(port: number) {
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: concurrency });
  const latencies: number[] = [];
  let errors = 0;
  const classifyOnce = async (i: number) => {
    const t0 = performance.now();
    const res = await pool.request({
      path: '/v1/classify',
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: bodies[i % bodies.length],
    });
    await res.body.text();
    if (res.statusCode !== 200) errors++;
    return performance.now() - t0;
  };
  for (let i = 0; i < 500; i++) await classifyOnce(i);
  const began = performance.now();
  let sent = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() - began < budgetMs) latencies.push(await classifyOnce(sent++));
    }),
  );
  const seconds = (performance.now() - began) / 1000;
  latencies.sort((a, b) => a - b);
  await pool.close();
  return {
    perSecond: latencies.length / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    errors,
  };
}

async function waitReady(port: number, path: string) {
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}${path}`).then(
      (r) => r.status < 500,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing answered on port ${port}`);
}

const show = (name: string, r: Awaited<ReturnType<typeof load>>) =>
  `  ${name}: ${Math.round(r.perSecond)} requests/s, p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms, ${r.errors} errors`;

// 2. The floor: a bare node:http server answering a body of the same size, through the same client.
const barePort = await freePort();
const bare = spawn(process.execPath, [join(repoRoot, 'bench/bare-server.ts'), String(barePort)], {
  stdio: 'ignore',
});
let floor: Awaited<ReturnType<typeof load>>;
try {
  await waitReady(barePort, '/');
  floor = await load(barePort);
} finally {
  bare.kill('SIGTERM');
}
console.log(show('bare node:http server', floor));

// 3. The triage server as its own process, under the same concurrent keep-alive clients.
const port = await freePort();
const server = spawn(process.execPath, [join(repoRoot, 'workloads/triage-server/main.ts')], {
  env: {
    ...process.env,
    AURORA_MODEL_FILE: exampleModelFiles.model,
    AURORA_MODEL_SHA256: sha256(model),
    AURORA_MODEL_SPEC: JSON.stringify({
      version: spec.version,
      inputs: spec.inputs,
      outputs: spec.outputs,
      executionProviders: ['cpu'],
    }),
    AURORA_PORT: String(port),
    AURORA_LOG_LEVEL: 'warn',
  },
  stdio: 'inherit',
});
try {
  await waitReady(port, '/readyz');
  const triage = await load(port);
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const batchSum = Number(metrics.match(/aurora_triage_batch_size_sum (\d+)/)?.[1]);
  const batchCount = Number(metrics.match(/aurora_triage_batch_size_count (\d+)/)?.[1]);
  console.log(`${show('triage server over HTTP', triage)}, mean batch ${(batchSum / batchCount).toFixed(1)}`);
  console.log(
    `  triage server / bare server: throughput ${(triage.perSecond / floor.perSecond).toFixed(3)} (goal >= 0.85), p99 ${(triage.p99 / floor.p99).toFixed(2)}x (goal <= 1.5x)`,
  );
  console.log(
    `  HTTP throughput / raw one-at-a-time throughput: ${(triage.perSecond / rawSingle).toFixed(3)}`,
  );
} finally {
  server.kill('SIGTERM');
}
