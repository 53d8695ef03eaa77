// Builds the example triage model from nothing but a seed: synthetic patients, NEWS2 labels, a small
// classifier trained in TypeScript, written as ONNX. Usage: node hack/example-model/generate.ts [--check]
// --check rebuilds everything in memory and fails unless the committed files match byte for byte.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { stringify } from 'yaml';
import type { Vitals } from './news2.ts';
import { featureVector, news2Boundaries, news2Risk, type RiskLabel, riskLabels } from './news2.ts';
import { asFloat32, classifierToOnnx, type OnnxContract } from './onnx.ts';
import { boundaryPatients, clinicalRangePatient, seededRandom, syntheticPatient } from './patients.ts';
import { type Bands, type Classifier, predict, train } from './train.ts';

const root = resolve(import.meta.dirname, '../..');
export const exampleModelFiles = {
  model: join(root, 'examples/model/news2-risk.onnx'),
  goldenVectors: join(root, 'examples/model/golden-vectors.jsonl'),
  configMap: join(root, 'examples/model/configmap.yaml'),
  underTriage: join(root, 'test/fixtures/models/news2-risk-under-triage.onnx'),
};

/** The committed golden vectors' features, in the contract's order: synthetic patients, no real person. */
export function exampleGoldenFeatures(): number[][] {
  return readFileSync(exampleModelFiles.goldenVectors, 'utf8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { features: number[] }).features);
}

export const contract: OnnxContract = {
  inputName: 'vitals',
  outputName: 'probabilities',
  features: [
    'respiration_rate',
    'spo2',
    'supplemental_oxygen',
    'systolic_bp',
    'pulse',
    'consciousness',
    'temperature',
  ],
  labels: riskLabels,
  version: '1.0.0',
};

const seeds = { train: 20_261_123, golden: 4_242, goldenBoundaries: 7_717, independent: 1_234_567 };
/** Patients like a ward's, and as many drawn across the whole clinical range, so no range is unseen. */
const trainingPatients = { ward: 12_000, range: 12_000 };
const goldenPatients = 400;
/** Golden vectors on each side of every chart boundary, per value. */
const goldenPerBoundaryValue = 4;

/** A soft step at each chart boundary, sharp enough to be a step across the values on either side. */
export const news2Bands: Bands = {
  feature: news2Boundaries.map((b) => b.vital),
  threshold: news2Boundaries.map((b) => (b.below + b.above) / 2),
  sharpness: news2Boundaries.map((b) => 10 / ((b.above - b.below) / 2)),
};

const riskRank = (label: string) => riskLabels.length - 1 - riskLabels.indexOf(label as RiskLabel);

/**
 * The model on patients it never saw, drawn independently of its training data: across the whole
 * clinical range of every vital, and on both sides of every chart boundary (from a ward and from the
 * whole range). Under-triage is a predicted risk below the NEWS2 risk.
 */
export function independentEvaluation(model: Classifier, perBoundaryValue = 10, rangePatients = 2000) {
  const random = seededRandom(seeds.independent);
  const patients: Vitals[] = [
    ...Array.from({ length: rangePatients }, () => clinicalRangePatient(random)),
    ...boundaryPatients(random, news2Boundaries, perBoundaryValue, syntheticPatient),
    ...boundaryPatients(random, news2Boundaries, perBoundaryValue, clinicalRangePatient),
  ];
  let high = 0;
  let highHit = 0;
  let under = 0;
  for (const patient of patients) {
    const truth = news2Risk(patient).risk;
    const p = predict(model, featureVector(patient));
    const predicted = riskLabels[p.indexOf(Math.max(...p))] as RiskLabel;
    if (truth === 'high') {
      high++;
      if (predicted === 'high') highHit++;
    }
    if (riskRank(predicted) < riskRank(truth)) under++;
  }
  return { patients: patients.length, highRecall: highHit / high, underTriage: under / patients.length };
}

export interface GeneratedModel {
  files: Record<keyof typeof exampleModelFiles, Uint8Array>;
  goldenAccuracy: number;
  goldenRecall: Record<string, number>;
  underTriageRecallHigh: number;
  /** On patients drawn independently of the training data (independentEvaluation). */
  independent: { patients: number; highRecall: number; underTriage: number };
  classifier: Classifier;
}

function evaluate(model: Classifier, vectors: Array<{ features: number[]; expectedLabel: string }>) {
  let correct = 0;
  const hits: Record<string, number> = {};
  const totals: Record<string, number> = {};
  for (const v of vectors) {
    const p = predict(model, v.features);
    const label = riskLabels[p.indexOf(Math.max(...p))];
    totals[v.expectedLabel] = (totals[v.expectedLabel] ?? 0) + 1;
    if (label === v.expectedLabel) {
      correct++;
      hits[v.expectedLabel] = (hits[v.expectedLabel] ?? 0) + 1;
    }
  }
  const recall = Object.fromEntries(Object.keys(totals).map((l) => [l, (hits[l] ?? 0) / (totals[l] ?? 1)]));
  return { accuracy: correct / vectors.length, recall };
}

export function generateExampleModel(log: (line: string) => void = () => {}): GeneratedModel {
  const random = seededRandom(seeds.train);
  const patients = [
    ...Array.from({ length: trainingPatients.ward }, () => syntheticPatient(random)),
    ...Array.from({ length: trainingPatients.range }, () => clinicalRangePatient(random)),
  ];
  const features = patients.map(featureVector);
  const labels = patients.map((p) => riskLabels.indexOf(news2Risk(p).risk));
  const counts = riskLabels.map((_, k) => labels.filter((l) => l === k).length);
  log(
    `  ${patients.length} synthetic patients (${trainingPatients.ward} like a ward's, ${trainingPatients.range} across the clinical range): ${riskLabels.map((l, k) => `${l} ${counts[k]}`).join(', ')}`,
  );
  // Missing a high-risk patient costs most: under-triage is the failure that matters.
  const trained = train(
    features,
    labels,
    riskLabels.length,
    {
      hidden: 24,
      epochs: 15,
      batchSize: 64,
      learningRate: 0.01,
      seed: seeds.train,
      onEpoch: (epoch, loss, accuracy) => {
        if (epoch % 5 === 0)
          log(`  epoch ${epoch}: loss ${loss.toFixed(4)}, training accuracy ${(accuracy * 100).toFixed(1)}%`);
      },
    },
    [3, 2, 1.5, 1],
    news2Bands,
  );
  const model = asFloat32(trained);

  const goldenRandom = seededRandom(seeds.golden);
  const golden = [
    ...Array.from({ length: goldenPatients }, () => syntheticPatient(goldenRandom)),
    // Both sides of every chart boundary: a model that misses a step fails its own acceptance.
    ...boundaryPatients(seededRandom(seeds.goldenBoundaries), news2Boundaries, goldenPerBoundaryValue),
  ].map((p) => ({ features: featureVector(p), expectedLabel: news2Risk(p).risk }));
  const { accuracy, recall } = evaluate(model, golden);

  // The deliberately bad version: the same network with the high-risk output pushed down, so it
  // sends high-risk patients to lower categories. The acceptance gate must refuse it.
  const underTriage: Classifier = {
    ...model,
    b2: model.b2.map((b, k) => (k === 0 ? Math.fround(b - 40) : b)),
  };
  const bad = evaluate(underTriage, golden);

  const modelBytes = classifierToOnnx(model, contract);
  const vectorsText = `${golden.map((g) => JSON.stringify(g)).join('\n')}\n`;
  const configMap = stringify({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: 'er-news2-risk-model',
      namespace: 'emergency',
      labels: { 'app.kubernetes.io/part-of': 'er-triage' },
      annotations: { 'aurora.health/sha256': createHash('sha256').update(modelBytes).digest('hex') },
    },
    data: { 'golden-vectors.jsonl': vectorsText },
    binaryData: { 'model.onnx': Buffer.from(modelBytes).toString('base64') },
  });
  return {
    files: {
      model: modelBytes,
      goldenVectors: new TextEncoder().encode(vectorsText),
      configMap: new TextEncoder().encode(
        `# Generated by hack/example-model/generate.ts: the example model and its golden vectors.\n${configMap}`,
      ),
      underTriage: classifierToOnnx(underTriage, { ...contract, version: '1.0.1-under-triage' }),
    },
    goldenAccuracy: accuracy,
    goldenRecall: recall,
    underTriageRecallHigh: bad.recall.high ?? 0,
    independent: independentEvaluation(model),
    classifier: model,
  };
}

if (import.meta.main) {
  const check = process.argv.includes('--check');
  console.log(`Building the example model (${check ? 'checking the committed files' : 'writing files'})`);
  const started = Date.now();
  const generated = generateExampleModel((line) => console.log(line));
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  console.log(
    `  golden vectors: accuracy ${pct(generated.goldenAccuracy)}, recall ${Object.entries(
      generated.goldenRecall,
    )
      .map(([l, r]) => `${l} ${pct(r)}`)
      .join(', ')}`,
  );
  console.log(`  under-triage fixture: recall of high ${pct(generated.underTriageRecallHigh)}`);
  const { independent } = generated;
  console.log(
    `  ${independent.patients} patients drawn independently across the clinical range and on both sides of every chart boundary: recall of high ${pct(independent.highRecall)} (goal >= 95%), under-triage ${pct(independent.underTriage)} (goal <= 5%)`,
  );
  let stale = 0;
  for (const [key, bytes] of Object.entries(generated.files) as Array<
    [keyof typeof exampleModelFiles, Uint8Array]
  >) {
    const file = exampleModelFiles[key];
    if (check) {
      const same = existsSync(file) && Buffer.compare(readFileSync(file), Buffer.from(bytes)) === 0;
      if (!same) stale++;
      console.log(`  ${same ? '✓ same' : '✗ differs'}: ${file}`);
    } else {
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, bytes);
      console.log(`  wrote ${file} (${bytes.length} bytes)`);
    }
  }
  console.log(`Done in ${((Date.now() - started) / 1000).toFixed(1)}s`);
  if (stale > 0) process.exit(1);
}
