import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { z } from 'zod';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string;
};
/** The image the operator runs triage servers and the node profiler from: its own release by default. */
export const defaultWorkloadImage = `ghcr.io/aurora-health/aurora:${version}`;

const dns1123Label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

const booleanText = z
  .union([z.boolean(), z.enum(['true', 'false', '1', '0'])])
  .transform((v) => v === true || v === 'true' || v === '1');

export const operatorConfigSchema = z
  .object({
    kubeconfig: z.string().min(1).optional(),
    namespace: z.string().regex(dns1123Label, 'must be a DNS-1123 label').max(63).optional(),
    leaderElect: booleanText.default(true),
    leaderElectionNamespace: z
      .string()
      .regex(dns1123Label, 'must be a DNS-1123 label')
      .max(63)
      .default('aurora-system'),
    leaderElectionId: z
      .string()
      .regex(dns1123Label, 'must be a DNS-1123 label')
      .max(63)
      .default('aurora-operator'),
    /**
     * How long a lease lasts without renewal: a standby takes over this long after the leader's last
     * renewal it saw, so it bounds the time no replica leads after a crash.
     */
    leaseDurationSeconds: z.coerce.number().int().min(2).max(300).default(12),
    /** A leader that could not renew for this long stops, before any standby may take over. */
    renewDeadlineSeconds: z.coerce.number().int().min(1).max(299).default(8),
    /** How often a leader renews and a standby polls. */
    retryPeriodSeconds: z.coerce.number().int().min(1).max(60).default(2),
    identity: z.string().min(1).max(128),
    httpPort: z.coerce.number().int().min(0).max(65_535).default(8080),
    logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info'),
    workers: z.coerce.number().int().min(1).max(64).default(2),
    /**
     * CareQueue reconciles at once (each waits on Redis, PostgreSQL and the API server in turn). More
     * than two helps only where the API server has cores to spare: bench/scale.ts on two shared cores
     * measured 500 queues reflecting changes more slowly with 8 workers and 200 requests a second.
     */
    queueWorkers: z.coerce.number().int().min(1).max(64).default(2),
    /**
     * Requests a second to the API server, on average and in a burst: one budget for every controller,
     * so a hot loop cannot flood the API server (which also has its own priority and fairness).
     */
    kubeApiQps: z.coerce.number().int().min(1).max(10_000).default(50),
    kubeApiBurst: z.coerce.number().int().min(1).max(20_000).default(100),
    resyncSeconds: z.coerce.number().int().min(0).max(86_400).default(1800),
    validatorUrl: z.url({ protocol: /^https?$/ }).optional(),
    workloadImage: z
      .string()
      .min(1)
      .max(512)
      .regex(/^[^\s]+$/, 'must be an image reference without spaces')
      .default(defaultWorkloadImage),
    /** Where decision records and arrival history go (credentials in it: give it through the environment). */
    postgresUrl: z
      .string()
      .regex(/^postgres(ql)?:\/\/[^\s]+$/, 'must be a postgres:// or postgresql:// URL')
      .optional(),
    postgresSchema: z
      .string()
      .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be lower-case letters, digits and _')
      .default('aurora'),
  })
  // The leader must stop (renew deadline) before a standby can take over (lease duration). A standby
  // trusts the holder's renewTime only to a retry period and 1 s before it saw it, so the gap must
  // exceed that too, whatever the holder's clock says; and the leader needs more than one renewal
  // attempt before it stops (client-go's rule).
  .refine((c) => c.leaseDurationSeconds - c.renewDeadlineSeconds > c.retryPeriodSeconds + 1, {
    path: ['leaseDurationSeconds'],
    message:
      'must exceed the renew deadline (--renew-deadline-seconds) by more than a retry period (--retry-period-seconds) and 1 s',
  })
  .refine((c) => c.renewDeadlineSeconds > c.retryPeriodSeconds * 1.2, {
    path: ['renewDeadlineSeconds'],
    message: 'must be longer than 1.2 retry periods (--retry-period-seconds)',
  });

export type OperatorConfig = z.infer<typeof operatorConfigSchema>;

/** Each setting's flag and environment variable; a flag wins over the environment. */
const sources: Record<keyof OperatorConfig, { flag: string; env: string[] }> = {
  kubeconfig: { flag: 'kubeconfig', env: ['KUBECONFIG'] },
  namespace: { flag: 'namespace', env: ['AURORA_NAMESPACE'] },
  leaderElect: { flag: 'leader-elect', env: ['AURORA_LEADER_ELECT'] },
  leaderElectionNamespace: {
    flag: 'leader-election-namespace',
    env: ['AURORA_LEADER_ELECTION_NAMESPACE', 'POD_NAMESPACE'],
  },
  leaderElectionId: { flag: 'leader-election-id', env: ['AURORA_LEADER_ELECTION_ID'] },
  leaseDurationSeconds: { flag: 'lease-duration-seconds', env: ['AURORA_LEASE_DURATION_SECONDS'] },
  renewDeadlineSeconds: { flag: 'renew-deadline-seconds', env: ['AURORA_RENEW_DEADLINE_SECONDS'] },
  retryPeriodSeconds: { flag: 'retry-period-seconds', env: ['AURORA_RETRY_PERIOD_SECONDS'] },
  identity: { flag: 'identity', env: ['AURORA_IDENTITY', 'POD_NAME'] },
  httpPort: { flag: 'http-port', env: ['AURORA_HTTP_PORT'] },
  logLevel: { flag: 'log-level', env: ['AURORA_LOG_LEVEL'] },
  workers: { flag: 'workers', env: ['AURORA_WORKERS'] },
  queueWorkers: { flag: 'queue-workers', env: ['AURORA_QUEUE_WORKERS'] },
  kubeApiQps: { flag: 'kube-api-qps', env: ['AURORA_KUBE_API_QPS'] },
  kubeApiBurst: { flag: 'kube-api-burst', env: ['AURORA_KUBE_API_BURST'] },
  resyncSeconds: { flag: 'resync-seconds', env: ['AURORA_RESYNC_SECONDS'] },
  validatorUrl: { flag: 'validator-url', env: ['AURORA_VALIDATOR_URL'] },
  workloadImage: { flag: 'workload-image', env: ['AURORA_WORKLOAD_IMAGE'] },
  postgresUrl: { flag: 'postgres-url', env: ['AURORA_POSTGRES_URL'] },
  postgresSchema: { flag: 'postgres-schema', env: ['AURORA_POSTGRES_SCHEMA'] },
};

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Reads the operator's settings from flags and environment; a bad value names its flag and variable. */
export function loadOperatorConfig(argv: string[], env: NodeJS.ProcessEnv): OperatorConfig {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: argv,
      options: Object.fromEntries(Object.values(sources).map((s) => [s.flag, { type: 'string' as const }])),
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    throw new ConfigError(`invalid arguments: ${(err as Error).message}`);
  }
  const raw: Record<string, unknown> = {};
  for (const [key, source] of Object.entries(sources)) {
    const fromFlag = values[source.flag];
    const fromEnv = source.env.map((e) => env[e]).find((v) => v !== undefined && v !== '');
    const value = fromFlag ?? fromEnv;
    if (value !== undefined) raw[key] = value;
  }
  raw.identity ??= `${env.HOSTNAME ?? hostname()}-${process.pid}`;
  const parsed = operatorConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const key = String(issue.path[0]) as keyof OperatorConfig;
      const source = sources[key];
      return `--${source.flag} (${source.env.join(' or ')}): ${issue.message}`;
    });
    throw new ConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`);
  }
  return parsed.data;
}
