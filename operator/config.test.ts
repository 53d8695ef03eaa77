import { describe, expect, it } from 'vitest';
import { loadOperatorConfig } from './config.ts';

describe('loadOperatorConfig', () => {
  it('applies defaults', () => {
    const config = loadOperatorConfig([], { HOSTNAME: 'op-1' });
    expect(config).toMatchObject({
      leaderElect: true,
      leaderElectionNamespace: 'aurora-system',
      leaderElectionId: 'aurora-operator',
      httpPort: 8080,
      workers: 2,
      logLevel: 'info',
      leaseDurationSeconds: 12,
      renewDeadlineSeconds: 8,
      retryPeriodSeconds: 2,
    });
    expect(config.identity).toMatch(/^op-1-\d+$/);
  });

  it('takes flags over environment, and the pod namespace for the lease', () => {
    const config = loadOperatorConfig(['--workers', '8', '--leader-elect', 'false'], {
      AURORA_WORKERS: '3',
      POD_NAMESPACE: 'aurora',
      POD_NAME: 'aurora-operator-abc',
    });
    expect(config).toMatchObject({
      workers: 8,
      leaderElect: false,
      leaderElectionNamespace: 'aurora',
      identity: 'aurora-operator-abc',
    });
  });

  it.each([
    { argv: ['--http-port', '70000'], env: {}, message: /--http-port \(AURORA_HTTP_PORT\): Too big/ },
    { argv: [], env: { AURORA_WORKERS: 'many' }, message: /--workers \(AURORA_WORKERS\): .*number/ },
    {
      argv: ['--namespace', 'Bad_NS'],
      env: {},
      message: /--namespace \(AURORA_NAMESPACE\): must be a DNS-1123 label/,
    },
    { argv: ['--log-level', 'loud'], env: {}, message: /--log-level \(AURORA_LOG_LEVEL\)/ },
    { argv: ['--leader-elect', 'maybe'], env: {}, message: /--leader-elect \(AURORA_LEADER_ELECT\)/ },
    { argv: ['--colour', 'red'], env: {}, message: /invalid arguments: .*colour/ },
    {
      argv: ['--lease-duration-seconds', '11'],
      env: {},
      message: /--lease-duration-seconds \(AURORA_LEASE_DURATION_SECONDS\): must exceed the renew deadline/,
    },
    {
      argv: ['--renew-deadline-seconds', '2', '--retry-period-seconds', '2'],
      env: {},
      message:
        /--renew-deadline-seconds \(AURORA_RENEW_DEADLINE_SECONDS\): must be longer than 1.2 retry periods/,
    },
  ])('rejects $argv $env naming the setting', ({ argv, env, message }) => {
    expect(() => loadOperatorConfig(argv, env)).toThrow(message);
  });
});
