// The example model in onnxruntime-node on this machine: single-request latency and batched throughput.
// Usage: node bench/triage-model.ts [--seconds 3]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import { exampleGoldenFeatures, exampleModelFiles } from '../hack/example-model/generate.ts';
import { percentile } from '../model/acceptance.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '3' } } });
const budgetMs = Number(values.seconds) * 1000;
const session = await ort.InferenceSession.create(readFileSync(exampleModelFiles.model), {
  executionProviders: ['cpu'],
});
const vectors = exampleGoldenFeatures();
const tensorOf = (rows: number[][]) =>
  new ort.Tensor('float32', Float32Array.from(rows.flat()), [rows.length, 7]);

console.log(
  `Example model ${exampleModelFiles.model} on onnxruntime-node ${ort.env.versions.node}, CPU, ${budgetMs / 1000} s per figure`,
);
// Warm up: the first runs allocate and pick kernels.
for (let i = 0; i < 200; i++)
  await session.run({ vitals: tensorOf([vectors[i % vectors.length] as number[]]) });

const latencies: number[] = [];
let start = performance.now();
while (performance.now() - start < budgetMs) {
  const input = { vitals: tensorOf([vectors[latencies.length % vectors.length] as number[]]) };
  const t0 = performance.now();
  await session.run(input);
  latencies.push(performance.now() - t0);
}
latencies.sort((a, b) => a - b);
console.log(
  `  single request: ${latencies.length} runs, p50 ${(percentile(latencies, 50) * 1000).toFixed(1)} µs, p99 ${(percentile(latencies, 99) * 1000).toFixed(1)} µs, ${Math.round(latencies.length / (budgetMs / 1000))} requests/s`,
);

for (const batchSize of [16, 64, 256]) {
  const batch = tensorOf(
    Array.from({ length: batchSize }, (_, i) => vectors[i % vectors.length] as number[]),
  );
  let rows = 0;
  start = performance.now();
  while (performance.now() - start < budgetMs) {
    await session.run({ vitals: batch });
    rows += batchSize;
  }
  const seconds = (performance.now() - start) / 1000;
  console.log(
    `  batches of ${String(batchSize).padStart(3)}: ${Math.round(rows / seconds)} classifications/s`,
  );
}
