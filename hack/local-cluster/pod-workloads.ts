// Simulated nodes run no containers, so this runs the triage server of each ready pod as a local process
// with the pod's own settings: its environment (values, Secret keys, its own name), and the files its
// ConfigMap and Secret volumes would mount, written to a directory of its own. A pod that goes away or
// starts terminating gets SIGTERM, as the kubelet would send; its process drains like a container.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KubeClient } from '../../operator/kube/client.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import { startTriageServerProcess, type TriageServerProcess } from './triage-servers.ts';

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    secretKeyRef?: { name: string; key: string };
    configMapKeyRef?: { name: string; key: string };
    fieldRef?: { fieldPath: string };
  };
}
interface Volume {
  name: string;
  configMap?: { name: string; items?: { key: string; path: string }[] };
  secret?: { secretName: string; items?: { key: string; path: string }[] };
}
interface Pod extends KubeObject {
  spec: {
    containers: { env?: EnvVar[]; volumeMounts?: { name: string; mountPath: string }[] }[];
    volumes?: Volume[];
  };
  status?: { conditions?: { type: string; status: string }[] };
}
type DataObject = KubeObject & { data?: Record<string, string>; binaryData?: Record<string, string> };

export interface PodWorkloads {
  /** The processes running now, by pod name. */
  running(): ReadonlyMap<string, TriageServerProcess>;
  /** Resolves once the set of running processes matches the ready pods (after a scale). */
  settled(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Follows the pods matching labelSelector in namespace: a triage server per ready pod, stopped when the
 * pod goes. `log` is told of each start and stop, so a reader sees which processes stand for pods.
 */
export function followPodWorkloads(options: {
  client: KubeClient;
  namespace: string;
  labelSelector: string;
  workDir: string;
  /** Settings for every process on top of the pod's (shorter drains for tests, say). */
  env?: Record<string, string>;
  log?: (line: string) => void;
  pollMs?: number;
  /** Where each process's pid is kept, so a harness that dies can have them reaped. */
  pidDir?: string;
}): PodWorkloads {
  const { client, namespace } = options;
  const log = options.log ?? (() => {});
  const processes = new Map<string, TriageServerProcess>();
  const starting = new Map<string, Promise<void>>();
  const stopping = new Set<Promise<void>>();
  let stopped = false;
  let inSync = false;
  let waiters: (() => void)[] = [];

  const readKey = async (kind: 'Secret' | 'ConfigMap', name: string, key: string): Promise<Buffer> => {
    const obj = await client.get<DataObject>({ apiVersion: 'v1', kind, metadata: { name, namespace } });
    const text = obj?.data?.[key];
    const binary = obj?.binaryData?.[key];
    if (kind === 'Secret' && text !== undefined) return Buffer.from(text, 'base64');
    if (text !== undefined) return Buffer.from(text, 'utf8');
    if (binary !== undefined) return Buffer.from(binary, 'base64');
    throw new Error(`${kind} ${namespace}/${name} has no key ${key}`);
  };

  /** The pod's environment as its container would see it, with mounted files rewritten to local paths. */
  const podEnv = async (pod: Pod): Promise<Record<string, string>> => {
    const dir = join(options.workDir, pod.metadata.name);
    mkdirSync(dir, { recursive: true });
    const container = pod.spec.containers[0];
    const mounts = new Map<string, string>();
    for (const mount of container?.volumeMounts ?? []) {
      const volume = pod.spec.volumes?.find((v) => v.name === mount.name);
      const source = volume?.configMap
        ? { kind: 'ConfigMap' as const, name: volume.configMap.name, items: volume.configMap.items }
        : volume?.secret
          ? { kind: 'Secret' as const, name: volume.secret.secretName, items: volume.secret.items }
          : undefined;
      if (!source) continue;
      const local = join(dir, mount.name);
      mkdirSync(local, { recursive: true });
      for (const item of source.items ?? []) {
        writeFileSync(join(local, item.path), await readKey(source.kind, source.name, item.key));
      }
      mounts.set(mount.mountPath, local);
    }
    const env: Record<string, string> = {};
    for (const v of container?.env ?? []) {
      if (v.value !== undefined) env[v.name] = v.value;
      else if (v.valueFrom?.secretKeyRef)
        env[v.name] = (
          await readKey('Secret', v.valueFrom.secretKeyRef.name, v.valueFrom.secretKeyRef.key)
        ).toString('utf8');
      else if (v.valueFrom?.configMapKeyRef)
        env[v.name] = (
          await readKey('ConfigMap', v.valueFrom.configMapKeyRef.name, v.valueFrom.configMapKeyRef.key)
        ).toString('utf8');
      else if (v.valueFrom?.fieldRef?.fieldPath === 'metadata.name') env[v.name] = pod.metadata.name;
      else if (v.valueFrom?.fieldRef?.fieldPath === 'metadata.namespace') env[v.name] = namespace;
    }
    // Paths inside a mounted volume point into its local copy.
    for (const [name, value] of Object.entries(env)) {
      for (const [mountPath, local] of mounts) {
        if (value.startsWith(`${mountPath}/`)) env[name] = join(local, value.slice(mountPath.length + 1));
      }
    }
    return { ...env, HOSTNAME: pod.metadata.name, ...options.env };
  };

  const stopProcess = (name: string) => {
    const running = processes.get(name);
    processes.delete(name);
    if (!running) return;
    log(`  pod ${name} went: SIGTERM to its triage server (pid ${running.process.pid})`);
    const done = running.process.stop(35_000).finally(() => {
      stopping.delete(done);
      rmSync(join(options.workDir, name), { recursive: true, force: true });
    });
    stopping.add(done);
  };

  const sync = async () => {
    const { items } = await client.list<Pod>('v1', 'Pod', {
      namespace,
      labelSelector: options.labelSelector,
    });
    const ready = new Map(
      items
        .filter(
          (p) =>
            !p.metadata.deletionTimestamp &&
            p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
        )
        .map((p) => [p.metadata.name, p]),
    );
    for (const name of processes.keys()) if (!ready.has(name)) stopProcess(name);
    for (const [name, pod] of ready) {
      if (processes.has(name) || starting.has(name) || stopped) continue;
      const start = (async () => {
        try {
          const env = await podEnv(pod);
          const started = await startTriageServerProcess(`pod-${name}`, env, {
            logDir: options.workDir,
            ...(options.pidDir ? { pidDir: options.pidDir } : {}),
          });
          if (stopped) {
            await started.process.stop(5_000);
            return;
          }
          processes.set(name, started);
          log(
            `  pod ${name}: triage server running as local process ${started.process.pid} on port ${started.port}`,
          );
        } catch (err) {
          log(`  pod ${name}: its triage server did not start: ${(err as Error).message.split('\n')[0]}`);
        } finally {
          starting.delete(name);
        }
      })();
      starting.set(name, start);
    }
    inSync =
      starting.size === 0 &&
      processes.size === ready.size &&
      [...ready.keys()].every((n) => processes.has(n));
    if (inSync) {
      for (const w of waiters) w();
      waiters = [];
    }
  };

  let busy = false;
  const timer = setInterval(() => {
    if (busy || stopped) return;
    busy = true;
    void sync()
      .catch(() => {})
      .finally(() => {
        busy = false;
      });
  }, options.pollMs ?? 250);

  return {
    running: () => processes,
    settled: () =>
      inSync && starting.size === 0
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            waiters.push(resolve);
          }),
    async stop() {
      stopped = true;
      clearInterval(timer);
      await Promise.all(starting.values());
      for (const name of [...processes.keys()]) stopProcess(name);
      await Promise.all(stopping);
    },
  };
}
