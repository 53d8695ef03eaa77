// The triage server over HTTP next to raw onnxruntime-node, same model, same machine, same run.
// Usage: node bench/triage-server.ts [--seconds 5] [--concurrency 32]
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import { Pool } from 'undici';
import { parse } from 'yaml';
import { exampleModelFiles } from '../hack/example-model/generate.ts';
import { freePort, repoRoot } from '../hack/local-cluster/control-plane.ts';
import { percentile } from '../model/acceptance.ts';
import { sha256 } from '../model/fetch.ts';

const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '5' }, concurrency: { type: 'string', default: '32' } },
});
const budgetMs = Number(values.seconds) * 1000;
const concurrency = Number(values.concurrency);
const spec = parse(readFileSync(join(repoRoot, 'examples/triage-model.yaml'), 'utf8')).spec;
const model = readFileSync(exampleModelFiles.model);
const vectors = readFileSync(exampleModelFiles.goldenVectors, 'utf8')
  .trim()
  .split('\n')
  .map((l) => (JSON.parse(l) as { features: number[] }).features);
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

// 2. The server as its own process, under concurrent keep-alive clients.
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
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: concurrency });
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const bodies = vectors.map((v) =>
    JSON.stringify({ features: Object.fromEntries(names.map((n, i) => [n, v[i]])) }),
  );
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
  start = performance.now();
  let sent = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() - start < budgetMs) latencies.push(await classifyOnce(sent++));
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const batchSum = Number(metrics.match(/aurora_triage_batch_size_sum (\d+)/)?.[1]);
  const batchCount = Number(metrics.match(/aurora_triage_batch_size_count (\d+)/)?.[1]);
  console.log(
    `  triage server over HTTP: ${Math.round(latencies.length / seconds)} requests/s, p50 ${percentile(latencies, 50).toFixed(2)} ms, p99 ${percentile(latencies, 99).toFixed(2)} ms, ${errors} errors, mean batch ${(batchSum / batchCount).toFixed(1)}`,
  );
  console.log(
    `  HTTP throughput / raw one-at-a-time throughput: ${(latencies.length / seconds / rawSingle).toFixed(3)}`,
  );
  await pool.close();
} finally {
  server.kill('SIGTERM');
}
