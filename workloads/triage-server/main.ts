// The triage server: node workloads/triage-server/main.ts, configured by environment (see serverConfig).
// It loads the model, checks its digest and contract before it reports ready, and classifies over HTTP,
// batching concurrent requests into one model run. It never logs a request's values.
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { Redis } from 'ioredis';
import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';
import { z } from 'zod';
import { triageModelSpec } from '../../crds/triagemodel.ts';
import { checkContract } from '../../model/contract.ts';
import { fetchHttp } from '../../model/fetch.ts';
import { openSessionOnThread, type ThreadedSession } from '../../model/session-thread.ts';
import { sha256 } from '../../model/source.ts';
import { inputData, outputRows } from '../../model/tensors.ts';
import { createLogger } from '../../operator/log.ts';
import { redisFault, redisFaultMessages, redisOptions } from '../../queue/redis.ts';
import { createMicroBatcher } from './batcher.ts';
import { ModelFault, NotAStreamFault, startQueueConsumer } from './consumer.ts';
import { parseClassifyRequest } from './request.ts';

/** An environment variable holding JSON, parsed; an error says it is not JSON rather than where. */
const jsonText = z.string().transform((text, ctx) => {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    ctx.addIssue({ code: 'custom', message: 'must be JSON' });
    return z.NEVER;
  }
});

const modelContract = triageModelSpec.pick({
  version: true,
  inputs: true,
  outputs: true,
  executionProviders: true,
});

export const serverConfig = z
  .object({
    AURORA_MODEL_FILE: z
      .string()
      .min(1)
      .optional()
      .describe('Path of the model file (a mounted ConfigMap or volume).'),
    AURORA_MODEL_URL: z
      .string()
      // A URL from a Secret often ends in a newline (echo, --from-file).
      .trim()
      .regex(/^https?:\/\/[^\s]+$/, 'must be an http:// or https:// URL')
      .optional()
      .describe('Where to download the model file, when it is not mounted.'),
    AURORA_MODEL_URL_SHOWN_AS: z
      .string()
      .max(512)
      .optional()
      .describe('How logs name the model URL (one from a Secret is never shown, even in part).'),
    AURORA_MODEL_DOWNLOAD_TIMEOUT_SECONDS: z.coerce.number().int().min(1).max(3600).default(60),
    AURORA_MODEL_MAX_SIZE_MIB: z.coerce.number().int().min(1).max(4096).default(512),
    AURORA_MODEL_ALLOW_LOOPBACK: z
      .enum(['true', 'false'])
      .default('false')
      .transform((v) => v === 'true'),
    AURORA_MODEL_SHA256: z.string().regex(/^[a-f0-9]{64}$/, 'must be 64 lower-case hex digits'),
    AURORA_MODEL_SPEC: jsonText.pipe(modelContract),
    AURORA_PORT: z.coerce.number().int().min(0).max(65_535).default(8080),
    AURORA_MAX_BATCH_SIZE: z.coerce.number().int().min(1).max(1024).default(16),
    AURORA_BATCH_WINDOW_MS: z.coerce.number().int().min(0).max(1000).default(0),
    /** Requests being served at once; more are answered 503 with Retry-After. */
    AURORA_MAX_IN_FLIGHT: z.coerce.number().int().min(1).max(100_000).default(512),
    /** A client must send its headers within this, and its whole request within the next. */
    AURORA_HEADERS_TIMEOUT_SECONDS: z.coerce.number().min(1).max(300).default(10),
    AURORA_REQUEST_TIMEOUT_SECONDS: z.coerce.number().min(1).max(600).default(30),
    /** After SIGTERM: how long the server keeps answering while readiness fails and endpoints catch up. */
    AURORA_DRAIN_DELAY_SECONDS: z.coerce.number().min(0).max(60).default(5),
    /** Then: how long in-flight requests may take to finish (within the pod's grace period). */
    AURORA_DRAIN_SECONDS: z.coerce.number().min(0).max(300).default(20),
    /** Consumer mode (a CareQueue targets the pool): the Redis URL, from the queue's Secret. */
    AURORA_QUEUE_REDIS_URL: z
      .string()
      .trim()
      .regex(/^rediss?:\/\/[^\s]+$/, 'must be a redis:// or rediss:// URL')
      .optional(),
    AURORA_QUEUE_REDIS_TLS: z
      .enum(['true', 'false'])
      .default('false')
      .transform((v) => v === 'true'),
    AURORA_QUEUE_REDIS_CA_FILE: z.string().min(1).optional(),
    /** The category streams, highest acuity first: [{"category": ..., "streamKey": ...}]. */
    AURORA_QUEUE_STREAMS: jsonText
      .pipe(
        z
          .array(z.object({ category: z.string().min(1), streamKey: z.string().min(1) }))
          .min(1)
          .max(16),
      )
      .optional(),
    AURORA_QUEUE_GROUP: z.string().min(1).max(128).default('triage'),
    AURORA_QUEUE_RESULT_STREAM: z.string().min(1).max(256).optional(),
    AURORA_QUEUE_RESULT_MAX_LENGTH: z.coerce.number().int().min(100).max(10_000_000).default(100_000),
    AURORA_QUEUE_CLAIM_IDLE_SECONDS: z.coerce.number().int().min(1).max(3600).default(30),
    AURORA_QUEUE_BATCH_SIZE: z.coerce.number().int().min(1).max(1024).default(64),
    AURORA_QUEUE_LANES: z.coerce.number().int().min(1).max(16).default(2),
    /** An entry delivered more often than this (its batch failed each time) is answered with an error. */
    AURORA_QUEUE_MAX_DELIVERIES: z.coerce.number().int().min(1).max(1000).default(5),
    /** The most entries one consumer serves a second, for a downstream that must not go faster; 0: no limit. */
    AURORA_QUEUE_MAX_ENTRIES_PER_SECOND: z.coerce.number().min(0).max(1_000_000).default(0),
    /** The consumer's name in the group: the pod's name (its hostname), so Aurora can tell who holds what. */
    AURORA_QUEUE_CONSUMER: z.string().min(1).max(253).optional(),
  })
  .refine((c) => (c.AURORA_MODEL_FILE === undefined) !== (c.AURORA_MODEL_URL === undefined), {
    message: 'set exactly one of AURORA_MODEL_FILE and AURORA_MODEL_URL',
    path: ['AURORA_MODEL_FILE'],
  })
  .refine((c) => !c.AURORA_QUEUE_REDIS_URL || (c.AURORA_QUEUE_STREAMS && c.AURORA_QUEUE_RESULT_STREAM), {
    message: 'consumer mode needs AURORA_QUEUE_STREAMS and AURORA_QUEUE_RESULT_STREAM',
    path: ['AURORA_QUEUE_STREAMS'],
  });

type ServerConfig = z.infer<typeof serverConfig>;

/**
 * The model file's bytes: read from the mount, or downloaded with the digest checked. A download that
 * fails for want of the network is tried again (the pod stays unready); a wrong file is fatal.
 */
async function loadModelBytes(
  config: ServerConfig,
  log: ReturnType<typeof createLogger>,
): Promise<Uint8Array> {
  if (config.AURORA_MODEL_FILE) return readFileSync(config.AURORA_MODEL_FILE);
  const source = {
    url: config.AURORA_MODEL_URL ?? '',
    sha256: config.AURORA_MODEL_SHA256,
    timeoutSeconds: config.AURORA_MODEL_DOWNLOAD_TIMEOUT_SECONDS,
    maxSizeMiB: config.AURORA_MODEL_MAX_SIZE_MIB,
  };
  for (let attempt = 1; ; attempt++) {
    // Link-local (cloud metadata) is always refused; loopback (the pod's own ports) unless allowed.
    const fetched = await fetchHttp(source, {
      maxModelMiB: source.maxSizeMiB,
      allowLoopback: config.AURORA_MODEL_ALLOW_LOOPBACK,
      ...(config.AURORA_MODEL_URL_SHOWN_AS ? { shownAs: config.AURORA_MODEL_URL_SHOWN_AS } : {}),
    });
    if (fetched.ok) return fetched.bytes;
    if (fetched.reason !== 'SourceUnavailable') throw new Error(fetched.message);
    const delayMs = Math.min(30_000, 1000 * 2 ** Math.min(attempt, 5));
    log.warn({ attempt, err: fetched.message, retryInMs: delayMs }, 'model download failed; trying again');
    await new Promise((r) => setTimeout(r, delayMs));
  }
}

const maxBodyBytes = 64 * 1024;

function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBodyBytes) {
        resolve(undefined);
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) =>
  res
    .writeHead(status, {
      'content-type': typeof body === 'string' ? 'text/plain' : 'application/json',
      ...headers,
    })
    .end(typeof body === 'string' ? body : JSON.stringify(body));

export async function startTriageServer(env: NodeJS.ProcessEnv) {
  const log = createLogger({ name: 'triage-server' });
  const parsed = serverConfig.safeParse(env);
  if (!parsed.success) {
    throw new Error(
      `invalid configuration: ${parsed.error.issues.map((i) => `${String(i.path[0])}${i.path.length > 1 ? `.${i.path.slice(1).join('.')}` : ''}: ${i.message}`).join('; ')}`,
    );
  }
  const config = parsed.data;
  const spec = config.AURORA_MODEL_SPEC;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const requests = new Counter({
    name: 'aurora_triage_requests_total',
    help: 'Classification requests by HTTP status',
    labelNames: ['code'],
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'aurora_triage_request_seconds',
    help: 'Classification request latency',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  });
  const batchSizes = new Histogram({
    name: 'aurora_triage_batch_size',
    help: 'Requests per model run',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128],
    registers: [registry],
  });

  let loaded = false;
  let draining = false;
  let inFlight = 0;
  let model: { session: ThreadedSession; digest: string } | undefined;
  const labels = spec.outputs.labels.length;
  const runModel = async (rows: number[][]) => {
    if (!model) throw new Error('model not loaded');
    // The model runs on its own thread: probes, metrics and the queue's Redis traffic go on meanwhile.
    const out = await model.session.run(
      spec.inputs.tensorName,
      inputData(spec.inputs.elementType, rows),
      spec.outputs.tensorName,
    );
    const result = outputRows(out, rows.length, labels);
    if (!result) throw new Error(`the model gave no ${rows.length} × ${labels} output`);
    return result;
  };
  const batcher = createMicroBatcher<number[], number[]>({
    maxBatchSize: config.AURORA_MAX_BATCH_SIZE,
    batchWindowMs: config.AURORA_BATCH_WINDOW_MS,
    onBatch: (n) => batchSizes.observe(n),
    run: (rows) => runModel(rows),
  });
  /** A usable answer: one finite number per label. Anything else is a fault, never a 200. */
  const usable = (probabilities: number[]) =>
    probabilities.length === labels && probabilities.every(Number.isFinite);

  // Readiness runs one vector through the batcher and the model, end to end. The vector is made from
  // the contract (each feature's middle), never from patients.
  const probeVector = spec.inputs.features.map((f) => {
    const middle = f.min !== undefined && f.max !== undefined ? (f.min + f.max) / 2 : (f.min ?? f.max ?? 0);
    return spec.inputs.elementType.startsWith('int') ? Math.round(middle) : middle;
  });
  const probeEveryMs = 10_000;
  let probe = { ok: false, at: 0, running: false };
  const runProbe = async () => {
    probe.running = true;
    try {
      probe = { ok: usable(await batcher.submit(probeVector)), at: performance.now(), running: false };
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'readiness probe failed');
      probe = { ok: false, at: performance.now(), running: false };
    }
  };
  let probeStartedAt = 0;
  const ready = () => {
    if (!loaded || draining) return false;
    const now = performance.now();
    if (now - probe.at > probeEveryMs && !probe.running) {
      probeStartedAt = now;
      void runProbe();
    }
    // A probe that has not come back in a few seconds means the model is stuck: not ready.
    if (probe.running && now - probeStartedAt > 5_000) return false;
    return probe.ok;
  };

  const server = createServer(async (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') return send(res, 200, 'ok');
    if (path === '/readyz') {
      const ok = ready();
      return send(res, ok ? 200 : 503, ok ? 'ok' : draining ? 'draining' : 'model not ready');
    }
    if (path === '/metrics') return send(res, 200, await registry.metrics());
    if (path === '/v1/model' && req.method === 'GET') {
      if (!model) return send(res, 503, { error: 'model not loaded' });
      return send(res, 200, {
        version: spec.version,
        digest: `sha256:${model.digest}`,
        executionProvider: model.session.provider,
        labels: spec.outputs.labels,
        features: spec.inputs.features,
      });
    }
    if (path !== '/v1/classify') return send(res, 404, { error: 'not found' });
    if (req.method !== 'POST') return send(res, 405, { error: 'use POST' });
    const started = performance.now();
    const reply = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      requests.inc({ code: String(status) });
      latency.observe((performance.now() - started) / 1000);
      send(res, status, body, headers);
    };
    if (!loaded) return reply(503, { error: 'model not loaded' });
    // Bounded work: past the limit a client is told to come back, instead of every client waiting longer.
    if (inFlight >= config.AURORA_MAX_IN_FLIGHT)
      return reply(503, { error: 'too many requests in flight' }, { 'retry-after': '1' });
    inFlight++;
    res.once('close', () => {
      inFlight--;
      if (draining && inFlight === 0) drained?.();
    });
    const text = await readBody(req).catch(() => undefined);
    if (text === undefined) return reply(413, { error: `the body must be at most ${maxBodyBytes} bytes` });
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return reply(400, { error: 'the body is not JSON' });
    }
    const request = parseClassifyRequest(body, spec.inputs.features, spec.inputs.elementType);
    if ('error' in request) return reply(400, { error: request.error });
    try {
      const probabilities = await batcher.submit(request.vector);
      if (!usable(probabilities)) {
        log.error({ labels }, 'the model gave a non-finite or short answer');
        return reply(500, { error: 'the model gave no usable answer' });
      }
      const best = probabilities.indexOf(Math.max(...probabilities));
      return reply(200, {
        label: spec.outputs.labels[best],
        probabilities: Object.fromEntries(spec.outputs.labels.map((l, i) => [l, probabilities[i]])),
        modelVersion: spec.version,
        modelDigest: `sha256:${model?.digest}`,
      });
    } catch (err) {
      log.error({ err: (err as Error).message }, 'model run failed');
      return reply(500, { error: 'the model could not classify the request' });
    }
  });
  // Slow clients cannot hold sockets: headers and whole requests have deadlines.
  server.headersTimeout = config.AURORA_HEADERS_TIMEOUT_SECONDS * 1000;
  server.requestTimeout = config.AURORA_REQUEST_TIMEOUT_SECONDS * 1000;
  let drained: (() => void) | undefined;
  await new Promise<void>((resolve) => server.listen(config.AURORA_PORT, resolve));
  const port = (server.address() as AddressInfo).port;
  log.info({ port }, 'listening; loading the model');

  // Ready only after the file is the one pinned and matches the contract.
  let bytes: Uint8Array;
  try {
    bytes = await loadModelBytes(config, log);
  } catch (err) {
    server.close();
    throw err;
  }
  const digest = sha256(bytes);
  if (digest !== config.AURORA_MODEL_SHA256) {
    server.close();
    throw new Error(
      `the model file has sha256 ${digest}, AURORA_MODEL_SHA256 is ${config.AURORA_MODEL_SHA256}`,
    );
  }
  const opened = await openSessionOnThread(bytes, spec.executionProviders, {
    // Every run would fail from now on: the process ends, so the pod is restarted rather than kept
    // alive and useless (its queue entries go to other consumers after the claim time).
    onLost(err) {
      log.error({ err: err.message }, 'the model thread was lost; exiting');
      process.exit(1);
    },
  });
  for (const skip of opened.skipped) {
    log.info(
      { provider: skip.provider, err: skip.message.slice(0, 200) },
      'execution provider not available',
    );
  }
  if (!opened.ok) {
    server.close();
    throw new Error(`no execution provider could load the model: ${opened.message}`);
  }
  const { session } = opened;
  const contract = checkContract(spec, session.signature);
  if (!contract.valid) {
    server.close();
    await session.close();
    throw new Error(`the model does not match its contract: ${contract.problems.join('; ')}`);
  }
  model = { session, digest };
  loaded = true;
  await runProbe();
  if (!probe.ok) {
    server.close();
    await session.close();
    throw new Error('the model gave no usable answer to the readiness probe');
  }
  log.info({ version: spec.version, digest, executionProvider: session.provider }, 'model loaded; ready');
  const consumer = config.AURORA_QUEUE_REDIS_URL
    ? startConsumer(config, spec, digest, runModel, registry, log)
    : undefined;

  /**
   * Stops taking requests (readiness fails, new connections are refused), lets those in flight finish
   * within the drain time, then closes.
   */
  const drain = async () => {
    draining = true;
    // The queue first: stop reading, serve and acknowledge what is held, while HTTP drains beside it.
    const consumerStopped = consumer?.stop();
    // Readiness fails at once, but the Service's endpoints take a moment to drop this pod: requests
    // that still come are answered for the drain delay before the listener closes.
    await new Promise((resolve) => setTimeout(resolve, config.AURORA_DRAIN_DELAY_SECONDS * 1000).unref());
    server.close();
    server.closeIdleConnections();
    if (inFlight > 0) {
      await Promise.race([
        new Promise<void>((resolve) => {
          drained = resolve;
        }),
        new Promise((resolve) => setTimeout(resolve, config.AURORA_DRAIN_SECONDS * 1000).unref()),
      ]);
    }
    server.closeAllConnections();
    await consumerStopped;
    // The session is not released: the caller ends the process next, and the grace period is spent on
    // requests.
    log.info({ unfinished: inFlight }, 'drained');
  };
  return {
    port,
    drain,
    /** Closes the listener and the model thread, for a caller that keeps its process. */
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await session.close();
    },
  };
}

/** Consumer mode: serve the CareQueue's streams through the same model, beside the HTTP API. */
function startConsumer(
  config: ServerConfig,
  spec: z.infer<typeof modelContract>,
  digest: string,
  runModel: (rows: number[][]) => Promise<number[][]>,
  registry: Registry,
  log: ReturnType<typeof createLogger>,
) {
  const entries = new Counter({
    name: 'aurora_queue_entries_total',
    help: 'Queue entries served, by category and outcome (classified, or rejected for a bad entry)',
    labelNames: ['category', 'outcome'],
    registers: [registry],
  });
  const target = {
    url: config.AURORA_QUEUE_REDIS_URL ?? '',
    tls: {
      enabled: config.AURORA_QUEUE_REDIS_TLS,
      ...(config.AURORA_QUEUE_REDIS_CA_FILE
        ? { ca: readFileSync(config.AURORA_QUEUE_REDIS_CA_FILE, 'utf8') }
        : {}),
    },
  };
  // A connection of its own: the consumer blocks on it while the streams are empty.
  const client = new Redis(
    target.url,
    redisOptions(target, { enableOfflineQueue: true, commandTimeout: undefined }),
  );
  let lastFault = '';
  client.on('error', (err) => {
    const fault = redisFault(err);
    if (fault !== lastFault) log.warn({ fault }, redisFaultMessages[fault]);
    lastFault = fault;
  });
  client.on('ready', () => {
    lastFault = '';
  });
  client.connect().catch(() => {});
  const streams = config.AURORA_QUEUE_STREAMS ?? [];
  const consumerName = config.AURORA_QUEUE_CONSUMER ?? process.env.HOSTNAME ?? hostname();
  const consumer = startQueueConsumer({
    client,
    streams,
    group: config.AURORA_QUEUE_GROUP,
    consumer: consumerName,
    resultStreamKey: config.AURORA_QUEUE_RESULT_STREAM ?? '',
    resultMaxLength: config.AURORA_QUEUE_RESULT_MAX_LENGTH,
    claimIdleMs: config.AURORA_QUEUE_CLAIM_IDLE_SECONDS * 1000,
    batchSize: config.AURORA_QUEUE_BATCH_SIZE,
    lanes: config.AURORA_QUEUE_LANES,
    maxDeliveries: config.AURORA_QUEUE_MAX_DELIVERIES,
    maxEntriesPerSecond: config.AURORA_QUEUE_MAX_ENTRIES_PER_SECOND,
    labels: spec.outputs.labels,
    modelVersion: spec.version,
    modelDigest: `sha256:${digest}`,
    async classify(features) {
      const requests = features.map((f) =>
        parseClassifyRequest({ features: f }, spec.inputs.features, spec.inputs.elementType),
      );
      const rows = requests.flatMap((r) => ('vector' in r ? [r.vector] : []));
      const answers =
        rows.length > 0
          ? await runModel(rows).catch(() => {
              throw new ModelFault('the model could not classify the batch');
            })
          : [];
      let next = 0;
      return requests.map((r) => {
        if ('error' in r) return { error: r.error };
        const probabilities = answers[next++] ?? [];
        // One entry the model cannot answer is answered with an error, not retried with its batch for ever.
        if (probabilities.length !== spec.outputs.labels.length || !probabilities.every(Number.isFinite))
          return { error: 'the model gave no usable answer for these features' };
        return { probabilities };
      });
    },
    onBatch(report) {
      for (const r of report) entries.inc({ category: r.category, outcome: r.outcome });
    },
    onError(err) {
      if (err instanceof NotAStreamFault) {
        log.error({ fault: 'NotAStream', category: err.category }, err.message);
        return;
      }
      // A Redis reply or a model failure: the kind only, never an entry.
      const fault = err instanceof ModelFault ? 'ModelFailed' : redisFault(err);
      log.warn({ fault }, 'queue consumer: the batch was not served; trying again');
    },
  });
  log.info(
    { consumer: consumerName, categories: streams.map((s) => s.category) },
    'consuming the care queue',
  );
  return {
    async stop() {
      await consumer.stop();
      client.disconnect();
      log.info({ counts: consumer.counts }, 'queue consumer stopped');
    },
  };
}

if (import.meta.main) {
  try {
    const running = await startTriageServer(process.env);
    for (const signal of ['SIGTERM', 'SIGINT'] as const)
      process.once(signal, () => void running.drain().then(() => process.exit(0)));
  } catch (err) {
    console.error((err as Error).message);
    process.exit(1);
  }
}
