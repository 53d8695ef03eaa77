import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { type ManagedProcess, startProcess, waitFor } from './process.ts';

const run = promisify(execFile);

export interface ServiceSettings {
  postgresUrl: string;
  redisUrl: string;
}

export const defaultServices: ServiceSettings = {
  postgresUrl: process.env.AURORA_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
  redisUrl: process.env.AURORA_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
};

async function postgresAnswers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

/** Whether Redis at url answers PING within a couple of seconds. */
export async function redisAnswers(url: string): Promise<boolean> {
  const client = new Redis(url, { lazyConnect: true, connectTimeout: 2_000, maxRetriesPerRequest: 0 });
  client.on('error', () => {});
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

/**
 * Makes sure PostgreSQL and Redis answer, starting the machine's own servers (Debian packages) when they
 * do not, the way this machine kind documents it.
 */
export async function ensureServices(
  settings: ServiceSettings = defaultServices,
  log: (line: string) => void = () => {},
): Promise<ServiceSettings> {
  if (!(await postgresAnswers(settings.postgresUrl))) {
    log('  PostgreSQL does not answer; starting it');
    for (const version of readdirSync('/etc/postgresql')) {
      await run('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', 'start']).catch(() => {});
    }
    await waitFor(
      'PostgreSQL',
      async () => ((await postgresAnswers(settings.postgresUrl)) ? true : undefined),
      {
        timeoutMs: 30_000,
      },
    );
  }
  if (!(await redisAnswers(settings.redisUrl))) {
    log('  Redis does not answer; starting it');
    await run('redis-server', [
      '--daemonize',
      'yes',
      '--bind',
      '127.0.0.1',
      '-::1',
      '--port',
      '6379',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      '/var/lib/redis',
      '--logfile',
      '/var/log/redis/ci.log',
    ]);
    await waitFor('Redis', async () => ((await redisAnswers(settings.redisUrl)) ? true : undefined), {
      timeoutMs: 30_000,
    });
  }
  log('  PostgreSQL and Redis answer');
  return settings;
}

/** A PostgreSQL of a test's own, which it may stop and start (the machine's shared one is never stopped). */
export interface PrivatePostgres {
  url: string;
  stop(): Promise<void>;
  start(): Promise<void>;
  cleanup(): Promise<void>;
}

/**
 * Starts a throw-away PostgreSQL cluster on a free port from the machine's own binaries (Debian's
 * postgresql package). PostgreSQL refuses to run as root, so as root it runs as the postgres user.
 */
export async function startPrivatePostgres(
  port: number,
  options: { settings?: Record<string, string> } = {},
): Promise<PrivatePostgres> {
  const { mkdtempSync, chownSync, rmSync } = await import('node:fs');
  const { tmpdir, userInfo } = await import('node:os');
  const { join } = await import('node:path');
  const versions = readdirSync('/usr/lib/postgresql').sort();
  const bin = (name: string) => join('/usr/lib/postgresql', versions.at(-1) ?? '', 'bin', name);
  const dir = mkdtempSync(join(tmpdir(), 'aurora-pg-'));
  const asPostgres = userInfo().uid === 0;
  if (asPostgres) {
    const { uid, gid } = await run('id', ['-u', 'postgres']).then(async (u) => ({
      uid: Number(u.stdout.trim()),
      gid: Number((await run('id', ['-g', 'postgres'])).stdout.trim()),
    }));
    chownSync(dir, uid, gid);
  }
  const as = (cmd: string, args: string[]) =>
    asPostgres ? run('runuser', ['-u', 'postgres', '--', cmd, ...args]) : run(cmd, args);
  const data = join(dir, 'data');
  await as(bin('initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8']);
  const start = async () => {
    await as(bin('pg_ctl'), [
      '-D',
      data,
      '-l',
      join(dir, 'log'),
      '-w',
      '-o',
      [
        `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`,
        ...Object.entries(options.settings ?? {}).map(([k, v]) => `-c ${k}=${v}`),
      ].join(' '),
      'start',
    ]);
  };
  const stop = async () => {
    await as(bin('pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => {});
  };
  await start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    start,
    stop,
    async cleanup() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A Redis of a test's own, which it may kill and start again (the machine's shared one is never stopped). */
export interface PrivateRedis {
  url: string;
  /** Kills it as a crash would (SIGKILL). */
  kill(): Promise<void>;
  /** Starts it again on the same port and data, and waits until it answers. */
  start(): Promise<void>;
  cleanup(): Promise<void>;
}

/**
 * Starts a throw-away redis-server (Debian's redis-server package) on a free port. It persists as a
 * production queue's Redis would, to an append-only file synced on every write, so a crash loses no
 * entry and the streams and consumer groups are there again after a restart.
 */
export async function startPrivateRedis(
  port: number,
  options: { pidDir?: string } = {},
): Promise<PrivateRedis> {
  const { mkdtempSync, mkdirSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'aurora-redis-'));
  mkdirSync(join(dir, 'logs'));
  const url = `redis://127.0.0.1:${port}`;
  let server: ManagedProcess | undefined;
  const start = async () => {
    if (server?.isRunning()) return;
    server = startProcess(
      'redis-server',
      '/usr/bin/redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--save',
        '',
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
      ],
      { logDir: join(dir, 'logs'), ...(options.pidDir ? { pidDir: options.pidDir } : {}) },
    );
    await waitFor('private Redis to answer', async () => ((await redisAnswers(url)) ? true : undefined), {
      timeoutMs: 30_000,
      intervalMs: 100,
    });
  };
  const cleanup = async () => {
    await server?.stop(2_000);
    rmSync(dir, { recursive: true, force: true });
  };
  // A server that never answered leaves neither a process nor its directory behind; its log's last
  // lines, which say why, go into the error first.
  await start().catch(async (err: unknown) => {
    const tail = await server?.logTail().catch(() => '');
    await cleanup();
    throw new Error(`${(err as Error).message}${tail ? `\n${tail}` : ''}`);
  });
  return {
    url,
    start,
    async kill() {
      await server?.kill();
    },
    cleanup,
  };
}
