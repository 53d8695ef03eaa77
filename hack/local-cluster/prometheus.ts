// A real Prometheus (built from its Go module by hack/build-control-plane.sh) scraping targets on this
// machine: what the PromQL detector of a HealingPolicy queries in the tests and the sandbox.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultToolsDir, freePort } from './control-plane.ts';
import { type ManagedProcess, startProcess, waitFor } from './process.ts';

export interface LocalPrometheus {
  url: string;
  process: ManagedProcess;
  stop(): Promise<void>;
}

/**
 * Starts Prometheus scraping each `host:port` every scrapeIntervalSeconds, keeping the targets' own
 * labels (honor_labels), so an exporter can say which namespace and workload a series is about.
 */
export async function startPrometheus(options: {
  targets: string[];
  scrapeIntervalSeconds?: number;
  pidDir?: string;
  /** Rule files to evaluate (absolute paths), at the scrape interval. */
  ruleFiles?: string[];
}): Promise<LocalPrometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'aurora-prometheus-'));
  const interval = `${options.scrapeIntervalSeconds ?? 1}s`;
  const config = join(dir, 'prometheus.yml');
  writeFileSync(
    config,
    [
      'global:',
      `  scrape_interval: ${interval}`,
      `  evaluation_interval: ${interval}`,
      ...(options.ruleFiles?.length ? ['rule_files:', ...options.ruleFiles.map((f) => `  - '${f}'`)] : []),
      'scrape_configs:',
      '  - job_name: exporter',
      '    honor_labels: true',
      '    static_configs:',
      `      - targets: [${options.targets.map((t) => `'${t}'`).join(', ')}]`,
      '',
    ].join('\n'),
  );
  const port = await freePort();
  const process = startProcess(
    'prometheus',
    join(defaultToolsDir, 'bin', 'prometheus'),
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      // A value not scraped for this long is no longer returned: an exporter that stops is soon "empty".
      '--query.lookback-delta=5s',
      '--log.level=warn',
    ],
    { logDir: dir, ...(options.pidDir ? { pidDir: options.pidDir } : {}) },
  );
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    'Prometheus ready',
    async () => {
      if (!process.isRunning()) throw new Error(`prometheus exited: ${await process.logTail(20)}`);
      const r = await fetch(`${url}/-/ready`).catch(() => undefined);
      return r?.ok ? true : undefined;
    },
    { timeoutMs: 30_000 },
  );
  return {
    url,
    process,
    async stop() {
      await process.stop(5_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
