// The model validator: node workloads/validator/main.ts, configured by environment (validatorConfig).
// It downloads and judges model files that nobody vouches for yet, apart from the operator: it holds
// no cluster credentials, runs each model in a child process under a memory bound, and shares its
// capacity fairly between namespaces. In a cluster it runs beside the operator (the chart's sidecar,
// reachable on localhost only); on a developer's machine the operator starts it as a child process.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { downloadToFile } from '../../model/fetch.ts';
import { createModelRunner, nativeMemoryBound } from '../../model/runner.ts';
import { sha256 } from '../../model/source.ts';
import { type ValidationResponse, validationRequest } from '../../model/validation-protocol.ts';
import { createFairQueue } from '../../operator/fair-queue.ts';
import { createLogger } from '../../operator/log.ts';

const flag = z
  .union([z.boolean(), z.enum(['true', 'false', '1', '0'])])
  .transform((v) => v === true || v === 'true' || v === '1');

export const validatorConfig = z.object({
  AURORA_VALIDATOR_HOST: z.string().default('127.0.0.1'),
  AURORA_VALIDATOR_PORT: z.coerce.number().int().min(0).max(65_535).default(8081),
  /** Models run at once. */
  AURORA_VALIDATOR_CONCURRENCY: z.coerce.number().int().min(1).max(16).default(1),
  /** Downloads at once, and at once from one namespace. */
  AURORA_VALIDATOR_DOWNLOADS: z.coerce.number().int().min(1).max(64).default(4),
  AURORA_VALIDATOR_DOWNLOADS_PER_NAMESPACE: z.coerce.number().int().min(1).max(64).default(2),
  /** What one model may allocate beyond the runtime's own reservations. */
  AURORA_VALIDATOR_MEMORY_MIB: z.coerce.number().int().min(64).max(1_048_576).default(2048),
  AURORA_VALIDATOR_RUN_TIMEOUT_SECONDS: z.coerce.number().int().min(1).max(3600).default(120),
  /** A download that receives nothing this long fails; so does one below the least rate after twice it. */
  AURORA_VALIDATOR_IDLE_TIMEOUT_SECONDS: z.coerce.number().min(0.5).max(3600).default(30),
  AURORA_VALIDATOR_MIN_BYTES_PER_SECOND: z.coerce.number().int().min(0).default(16_384),
  /** Requests waiting in all; more are answered 503, and the operator tries again later. */
  AURORA_VALIDATOR_MAX_WAITING: z.coerce.number().int().min(1).max(100_000).default(256),
  AURORA_VALIDATOR_ALLOW_LOOPBACK: flag.default(false),
  AURORA_VALIDATOR_WORK_DIR: z.string().min(1).default(tmpdir()),
  /** Exit when standard input closes: how a validator started by the operator ends with it. */
  AURORA_VALIDATOR_EXIT_WITH_STDIN: flag.default(false),
  AURORA_LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info'),
});
export type ValidatorConfig = z.infer<typeof validatorConfig>;

/** The largest request body: a ConfigMap's file in base64 and golden vectors, with room to spare. */
const maxBodyBytes = 8 * 2 ** 20;

class RequestError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBodyBytes) throw new RequestError(413, `a request may be at most ${maxBodyBytes} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new RequestError(400, 'the body is not JSON');
  }
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
}

export interface RunningValidator {
  port(): number;
  close(): Promise<void>;
}

/** Starts the validator's HTTP server: POST /v1/validate, GET /healthz and /readyz. */
export async function startValidator(config: ValidatorConfig): Promise<RunningValidator> {
  const log = createLogger({ level: config.AURORA_LOG_LEVEL, name: 'aurora-validator' });
  const downloads = createFairQueue({
    concurrency: config.AURORA_VALIDATOR_DOWNLOADS,
    perTenant: config.AURORA_VALIDATOR_DOWNLOADS_PER_NAMESPACE,
  });
  const runs = createFairQueue({
    concurrency: config.AURORA_VALIDATOR_CONCURRENCY,
    perTenant: config.AURORA_VALIDATOR_CONCURRENCY,
  });
  const runner = createModelRunner({
    concurrency: config.AURORA_VALIDATOR_CONCURRENCY,
    timeoutMs: config.AURORA_VALIDATOR_RUN_TIMEOUT_SECONDS * 1000,
    memoryMiB: config.AURORA_VALIDATOR_MEMORY_MIB,
  });
  const jobs = new Map<AbortController, Promise<unknown>>();
  let stopping = false;

  const validate = async (request: z.output<typeof validationRequest>, signal: AbortSignal) => {
    // A download slot is held until the file is judged and removed, so the files on disk are never
    // more than the download slots: one namespace's backlog cannot fill the disk for everyone.
    const releaseDownload = await downloads.acquire(request.namespace, signal);
    const dir = await mkdtemp(join(config.AURORA_VALIDATOR_WORK_DIR, 'aurora-validation-'));
    try {
      const file = join(dir, 'model.onnx');
      let response: ValidationResponse;
      if ('http' in request.source) {
        const fetched = await downloadToFile(request.source.http, file, {
          maxModelMiB: request.maxModelMiB,
          allowLoopback: config.AURORA_VALIDATOR_ALLOW_LOOPBACK,
          signal,
          idleTimeoutMs: config.AURORA_VALIDATOR_IDLE_TIMEOUT_SECONDS * 1000,
          minBytesPerSecond: config.AURORA_VALIDATOR_MIN_BYTES_PER_SECOND,
          ...(request.source.shownAs ? { shownAs: request.source.shownAs } : {}),
        });
        response = fetched.ok
          ? { fetched: true, digest: fetched.digest, sizeBytes: fetched.sizeBytes }
          : { fetched: false, reason: fetched.reason, message: fetched.message };
      } else {
        const bytes = Buffer.from(request.source.base64, 'base64');
        await writeFile(file, bytes, { mode: 0o600 });
        response = { fetched: true, digest: sha256(bytes), sizeBytes: bytes.length };
      }
      if (!response.fetched || request.mode === 'check-source') return response;
      if (request.mode === 'fetch') return { ...response, base64: (await readFile(file)).toString('base64') };
      const releaseRun = await runs.acquire(request.namespace, signal);
      try {
        const outcome = await runner.run({ path: file }, request.run, signal);
        return { ...response, outcome };
      } finally {
        releaseRun();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
      releaseDownload();
    }
  };

  const server = createServer(async (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') return send(res, 200, { ok: true });
    if (path === '/readyz') return send(res, stopping ? 503 : 200, { ok: !stopping });
    if (path !== '/v1/validate' || req.method !== 'POST') return send(res, 404, { error: 'not found' });
    const job = new AbortController();
    // The operator hung up (it stopped, or the spec moved on): the work is no longer wanted.
    res.once('close', () => {
      if (!res.writableEnded) job.abort(new Error('the operator hung up'));
    });
    try {
      if (stopping) throw new RequestError(503, 'the validator is stopping');
      // Every request counts, from its first byte: a burst cannot pile up bodies in memory.
      if (jobs.size >= config.AURORA_VALIDATOR_MAX_WAITING)
        throw new RequestError(503, `${jobs.size} validations are under way already`);
      jobs.set(job, Promise.resolve());
      const parsed = validationRequest.safeParse(await readBody(req));
      if (!parsed.success) {
        const problems = parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`);
        throw new RequestError(400, problems.join('; '));
      }
      const started = performance.now();
      const work = validate(parsed.data, job.signal);
      jobs.set(
        job,
        work.catch(() => {}),
      );
      const result = await work;
      log.info(
        {
          namespace: parsed.data.namespace,
          mode: parsed.data.mode,
          fetched: result.fetched,
          outcome: result.fetched ? (result.outcome?.ok ?? 'checked') : result.reason,
          seconds: Math.round(performance.now() - started) / 1000,
        },
        'validation done',
      );
      send(res, 200, result);
    } catch (err) {
      if (job.signal.aborted) return;
      if (err instanceof RequestError)
        return send(
          res,
          err.status,
          { error: err.message },
          err.status === 503 ? { 'retry-after': '5' } : {},
        );
      log.error({ err: (err as Error).message }, 'validation failed');
      send(res, 500, { error: (err as Error).message });
    } finally {
      jobs.delete(job);
    }
  });
  server.requestTimeout = 0;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.AURORA_VALIDATOR_PORT, config.AURORA_VALIDATOR_HOST, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  log.info({ port, host: config.AURORA_VALIDATOR_HOST }, 'validator listening');
  if (!nativeMemoryBound())
    log.warn(
      'prlimit is not on this machine: a model run is bound by its V8 heap only, not its native memory',
    );
  return {
    port: () => port,
    async close() {
      stopping = true;
      for (const job of jobs.keys()) job.abort(new Error('the validator is stopping'));
      // Each job removes its files as it ends; wait for that (briefly) before the process goes.
      await Promise.race([Promise.all(jobs.values()), new Promise((r) => setTimeout(r, 5000).unref())]);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

if (import.meta.main) {
  const parsed = validatorConfig.safeParse(process.env);
  if (!parsed.success) {
    console.error(
      `invalid configuration: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
    process.exit(2);
  }
  const validator = await startValidator(parsed.data);
  const stop = () => void validator.close().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  if (parsed.data.AURORA_VALIDATOR_EXIT_WITH_STDIN) {
    process.stdin.resume();
    process.stdin.once('end', stop);
    process.stdin.once('error', stop);
  }
}
