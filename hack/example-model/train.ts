import { seededRandom } from './patients.ts';

/**
 * Fixed inputs derived from the raw values: for each band, sigmoid(sharpness × (x[feature] − threshold)),
 * a soft step at a threshold of a clinical chart. They are not trained: they say where the chart changes.
 */
export interface Bands {
  feature: number[];
  threshold: number[];
  sharpness: number[];
}

/**
 * A one-hidden-layer perceptron: standardise, add the band steps, dense + ReLU, dense, softmax. The
 * hidden layer sees the standardised vitals and the bands.
 */
export interface Classifier {
  mean: number[];
  std: number[];
  bands: Bands;
  /** w1[i][j]: input i to hidden j. */
  w1: number[][];
  b1: number[];
  /** w2[j][k]: hidden j to class k. */
  w2: number[][];
  b2: number[];
}

export interface TrainingOptions {
  hidden: number;
  epochs: number;
  batchSize: number;
  learningRate: number;
  seed: number;
  onEpoch?: (epoch: number, loss: number, accuracy: number) => void;
}

function softmax(z: number[]): number[] {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

/** What the hidden layer sees: the standardised values, then each band's soft step. */
export function layerInputs(model: Pick<Classifier, 'mean' | 'std' | 'bands'>, x: number[]): number[] {
  const xs = x.map((v, i) => (v - (model.mean[i] ?? 0)) / (model.std[i] ?? 1));
  const { feature, threshold, sharpness } = model.bands;
  const steps = feature.map(
    (f, b) => 1 / (1 + Math.exp(-(sharpness[b] as number) * ((x[f] as number) - (threshold[b] as number)))),
  );
  return [...xs, ...steps];
}

export function predict(model: Classifier, x: number[]): number[] {
  const xs = layerInputs(model, x);
  const h = model.b1.map((b, j) =>
    Math.max(
      0,
      xs.reduce((acc, v, i) => acc + v * (model.w1[i]?.[j] ?? 0), b),
    ),
  );
  return softmax(model.b2.map((b, k) => h.reduce((acc, v, j) => acc + v * (model.w2[j]?.[k] ?? 0), b)));
}

const argmax = (p: number[]) => p.indexOf(Math.max(...p));

/**
 * Trains with mini-batch Adam and cross-entropy, every random choice from one seed, so the same data
 * and options give the same weights. classWeights raise the cost of missing a class (high acuity).
 */
export function train(
  features: number[][],
  labels: number[],
  classes: number,
  options: TrainingOptions,
  classWeights: number[] = Array(classes).fill(1),
  bands: Bands = { feature: [], threshold: [], sharpness: [] },
): Classifier {
  const random = seededRandom(options.seed);
  const raw = features[0]?.length ?? 0;
  const inputs = raw + bands.feature.length;
  const mean = Array.from(
    { length: raw },
    (_, i) => features.reduce((a, f) => a + (f[i] ?? 0), 0) / features.length,
  );
  const std = mean.map(
    (m, i) => Math.sqrt(features.reduce((a, f) => a + ((f[i] ?? 0) - m) ** 2, 0) / features.length) || 1,
  );
  const he = (fanIn: number) => () => (random() * 2 - 1) * Math.sqrt(6 / fanIn);
  const init1 = he(inputs);
  const init2 = he(options.hidden);
  const model: Classifier = {
    mean,
    std,
    bands,
    w1: Array.from({ length: inputs }, () => Array.from({ length: options.hidden }, init1)),
    b1: Array(options.hidden).fill(0),
    w2: Array.from({ length: options.hidden }, () => Array.from({ length: classes }, init2)),
    b2: Array(classes).fill(0),
  };
  // Adam state, one moment pair per parameter, flattened in the order w1, b1, w2, b2.
  const params = () => [...model.w1.flat(), ...model.b1, ...model.w2.flat(), ...model.b2];
  const count = params().length;
  const m = new Float64Array(count);
  const v = new Float64Array(count);
  let step = 0;
  const order = features.map((_, i) => i);

  for (let epoch = 1; epoch <= options.epochs; epoch++) {
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j] as number, order[i] as number];
    }
    let lossSum = 0;
    let correct = 0;
    for (let start = 0; start < order.length; start += options.batchSize) {
      const batch = order.slice(start, start + options.batchSize);
      const gw1 = model.w1.map((r) => r.map(() => 0));
      const gb1 = model.b1.map(() => 0);
      const gw2 = model.w2.map((r) => r.map(() => 0));
      const gb2 = model.b2.map(() => 0);
      for (const n of batch) {
        const x = layerInputs(model, features[n] as number[]);
        const pre = model.b1.map((b, j) =>
          x.reduce((acc, val, i) => acc + val * (model.w1[i]?.[j] as number), b),
        );
        const h = pre.map((p) => Math.max(0, p));
        const p = softmax(
          model.b2.map((b, k) => h.reduce((acc, val, j) => acc + val * (model.w2[j]?.[k] as number), b)),
        );
        const y = labels[n] as number;
        const weight = classWeights[y] ?? 1;
        lossSum += -Math.log(Math.max(p[y] as number, 1e-12)) * weight;
        if (argmax(p) === y) correct++;
        const dz = p.map((pk, k) => (pk - (k === y ? 1 : 0)) * weight);
        for (let j = 0; j < h.length; j++) {
          for (let k = 0; k < classes; k++) {
            const row = gw2[j] as number[];
            row[k] = (row[k] as number) + (h[j] as number) * (dz[k] as number);
          }
        }
        for (let k = 0; k < classes; k++) gb2[k] = (gb2[k] as number) + (dz[k] as number);
        const dh = h.map((_, j) =>
          (pre[j] as number) > 0 ? dz.reduce((acc, d, k) => acc + d * (model.w2[j]?.[k] as number), 0) : 0,
        );
        for (let i = 0; i < x.length; i++) {
          for (let j = 0; j < h.length; j++) {
            const row = gw1[i] as number[];
            row[j] = (row[j] as number) + (x[i] as number) * (dh[j] as number);
          }
        }
        for (let j = 0; j < h.length; j++) gb1[j] = (gb1[j] as number) + (dh[j] as number);
      }
      step++;
      const grads = [...gw1.flat(), ...gb1, ...gw2.flat(), ...gb2].map((g) => g / batch.length);
      const flat = params();
      const lr = options.learningRate;
      for (let q = 0; q < count; q++) {
        const g = grads[q] as number;
        m[q] = 0.9 * (m[q] as number) + 0.1 * g;
        v[q] = 0.999 * (v[q] as number) + 0.001 * g * g;
        const mHat = (m[q] as number) / (1 - 0.9 ** step);
        const vHat = (v[q] as number) / (1 - 0.999 ** step);
        flat[q] = (flat[q] as number) - (lr * mHat) / (Math.sqrt(vHat) + 1e-8);
      }
      let q = 0;
      for (const row of model.w1) for (let j = 0; j < row.length; j++) row[j] = flat[q++] as number;
      for (let j = 0; j < model.b1.length; j++) model.b1[j] = flat[q++] as number;
      for (const row of model.w2) for (let k = 0; k < row.length; k++) row[k] = flat[q++] as number;
      for (let k = 0; k < model.b2.length; k++) model.b2[k] = flat[q++] as number;
    }
    options.onEpoch?.(epoch, lossSum / order.length, correct / order.length);
  }
  return model;
}
