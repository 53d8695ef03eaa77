// The node profiler: node workloads/node-profiler/main.ts, run as a DaemonSet with NODE_NAME from the
// downward API. It recognises an Apple-silicon machine and labels its own Node with chip, CPU and GPU
// cores and unified memory; the operator turns the memory label into schedulable unified memory.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';
import { createKubeClient } from '../../operator/kube/client.ts';
import { loadKubeAccess } from '../../operator/kube/kubeconfig.ts';
import { createLogger } from '../../operator/log.ts';
import { type MachineProfile, profileFromLinux, profileFromSysctl, profileLabels } from './profile.ts';

const fieldManager = 'aurora-node-profiler';

export const profilerConfig = z.object({
  NODE_NAME: z.string().min(1, 'must name the node this pod runs on (downward API spec.nodeName)'),
  AURORA_PROC_ROOT: z
    .string()
    .min(1)
    .default('/proc')
    .describe('Where /proc is mounted (the host /proc in a pod).'),
  AURORA_DEVICE_TREE: z
    .string()
    .min(1)
    .optional()
    .describe('Where the device tree is mounted (the host /sys/firmware/devicetree/base).'),
  AURORA_PROFILE_SOURCE: z
    .enum(['linux', 'darwin'])
    .default(process.platform === 'darwin' ? 'darwin' : 'linux')
    .describe('How to read the machine: sysctl on macOS, /proc and the device tree on Linux.'),
  AURORA_PROFILE_INTERVAL_SECONDS: z.coerce.number().int().min(0).max(86_400).default(3600),
  KUBECONFIG: z.string().optional(),
});

const readOptional = (path: string) => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
};

/** A file the profile cannot do without: unreadable or empty, nothing is labelled. */
const readRequired = (path: string) => {
  const text = readOptional(path);
  if (!text?.trim()) throw new Error(`cannot read ${path}; the node's labels are left as they are`);
  return text;
};

/**
 * Profiles the machine the process runs on. A /proc that cannot be read is an error, not evidence
 * that the machine is no Mac: labels are changed only on what was read.
 */
export async function profileThisMachine(
  config: {
    AURORA_PROFILE_SOURCE: 'linux' | 'darwin';
    AURORA_PROC_ROOT: string;
    AURORA_DEVICE_TREE?: string | undefined;
  },
  warn?: (message: string) => void,
): Promise<MachineProfile> {
  if (config.AURORA_PROFILE_SOURCE === 'darwin') {
    const run = promisify(execFile);
    const sysctl = await run('sysctl', ['hw', 'machdep']);
    const displays = await run('system_profiler', ['SPDisplaysDataType']).catch(() => ({ stdout: '' }));
    return profileFromSysctl(sysctl.stdout, displays.stdout);
  }
  const cpuinfo = readRequired(join(config.AURORA_PROC_ROOT, 'cpuinfo'));
  // In a pod, /proc/device-tree is a link into the host's /sys/firmware, mounted apart.
  const compatible = readOptional(
    join(config.AURORA_DEVICE_TREE ?? join(config.AURORA_PROC_ROOT, 'device-tree'), 'compatible'),
  );
  if (compatible === undefined) {
    warn?.(
      'no device tree (mount the host /sys/firmware/devicetree/base at AURORA_DEVICE_TREE): the chip comes from CPU part numbers alone',
    );
  }
  // Without it the memory label would go, and with it the node's schedulable unified memory.
  const meminfo = readRequired(join(config.AURORA_PROC_ROOT, 'meminfo'));
  return profileFromLinux({
    cpuinfo,
    ...(compatible !== undefined ? { deviceTreeCompatible: compatible } : {}),
    meminfo,
  });
}

export async function runProfiler(env: NodeJS.ProcessEnv) {
  const log = createLogger({ name: 'node-profiler' });
  const parsed = profilerConfig.safeParse(env);
  if (!parsed.success) {
    throw new Error(
      `invalid configuration: ${parsed.error.issues.map((i) => `${String(i.path[0])}: ${i.message}`).join('; ')}`,
    );
  }
  const config = parsed.data;
  const client = createKubeClient(loadKubeAccess(config.KUBECONFIG));
  for (;;) {
    const profile = await profileThisMachine(config, (message) => log.warn(message));
    const labels = profileLabels(profile);
    await client.patch(
      { apiVersion: 'v1', kind: 'Node', metadata: { name: config.NODE_NAME } },
      { metadata: { labels } },
      { type: 'merge', fieldManager },
    );
    log.info({ node: config.NODE_NAME, evidence: profile.evidence, labels }, 'node labelled');
    if (config.AURORA_PROFILE_INTERVAL_SECONDS === 0) return profile;
    await new Promise((r) => setTimeout(r, config.AURORA_PROFILE_INTERVAL_SECONDS * 1000));
  }
}

if (import.meta.main) {
  process.once('SIGTERM', () => process.exit(0));
  runProfiler(process.env).catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
