import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { KubeConfig, type V1Node } from '@kubernetes/client-node';
import { parseAllDocuments, stringify } from 'yaml';
import { accessFromKubeconfig, type ClusterAccess } from '../../operator/kube/access.ts';
import { createKubeClient, type KubeClient } from '../../operator/kube/client.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import { hospitalFleet, nodeManifest, type SimulatedMachine } from './fleet.ts';
import { type ManagedProcess, reapOrphans, startProcess, waitFor } from './process.ts';

export const repoRoot = resolve(import.meta.dirname, '../..');
export const defaultToolsDir = process.env.AURORA_TOOLS_DIR ?? join(repoRoot, '.tools');

export interface ControlPlaneOptions {
  toolsDir?: string;
  fleet?: readonly SimulatedMachine[];
  /**
   * Requests a second the controller manager and the scheduler may make (20 and 50 by default): a
   * benchmark that creates thousands of pods through Deployments raises it.
   */
  componentApiQps?: number;
  /** Extra kube-apiserver flags, e.g. --watch-cache=false so old resource versions expire at compaction. */
  apiServerExtraArgs?: string[];
  /**
   * Whether the API server logs every request made with a service-account token (the tests read it for
   * requests the chart's RBAC refused); off for a sandbox, which runs for days.
   */
  auditLog?: boolean;
  /** Progress lines; the control plane takes 10-20 s to start and says what it is waiting for. */
  log?: (line: string) => void;
}

export interface ControlPlane {
  readonly kubeconfigPath: string;
  readonly server: string;
  readonly runDir: string;
  /** The API server's audit log: every request made with a service-account token, as JSON lines. */
  readonly auditLogPath: string;
  /** etcd's client URL, for tests that compact history. */
  readonly etcdUrl: string;
  kubeConfig(): KubeConfig;
  /** The same, as the operator's own client reads it. */
  access(): ClusterAccess;
  /** The running API server process (replaced by startApiServer). */
  apiServer(): ManagedProcess;
  /** Kills the API server as a crash would; etcd and the other components keep running. */
  killApiServer(): Promise<void>;
  /** Starts the API server again with the same flags, port and certificates, and waits until ready. */
  startApiServer(): Promise<void>;
  /** Kills etcd as a crash would: the API server stays up and answers errors until etcd is back. */
  killEtcd(): Promise<void>;
  /** Starts etcd again on its data and ports, and waits until the API server is ready on it. */
  startEtcd(): Promise<void>;
  stop(): Promise<void>;
}

const clusterName = 'aurora-sandbox';
const podCidr = '10.128.0.1/14';

/**
 * Starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok as local processes, and
 * registers the simulated fleet as kwok nodes. Binaries come from hack/build-control-plane.sh.
 */
export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  // Ports are picked free and then bound by other processes, so another program may take one between the
  // two: such a start is tried again on new ports.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startControlPlaneOnce(options);
    } catch (err) {
      if (attempt >= 3 || !/address already in use/.test((err as Error).message)) throw err;
      options.log?.(`  a port was taken meanwhile; starting again on other ports (attempt ${attempt + 1})`);
    }
  }
}

async function startControlPlaneOnce(options: ControlPlaneOptions): Promise<ControlPlane> {
  const toolsDir = options.toolsDir ?? defaultToolsDir;
  const bin = (name: string) => join(toolsDir, 'bin', name);
  const log = options.log ?? (() => {});
  for (const name of ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok']) {
    if (!existsSync(bin(name))) {
      throw new Error(
        `${bin(name)} is missing: run 'npm run build:control-plane' (hack/build-control-plane.sh)`,
      );
    }
  }
  const runRoot = join(toolsDir, 'run');
  reapOrphans(runRoot);
  const runDir = join(runRoot, `${Date.now()}-${process.pid}`);
  const dirs = { logs: join(runDir, 'logs'), pids: join(runDir, 'pids'), pki: join(runDir, 'pki') };
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
  writeFileSync(join(runDir, 'owner.pid'), String(process.pid));
  const spawnOpts = { logDir: dirs.logs, pidDir: dirs.pids };
  const started = Date.now();
  const step = (what: string) => log(`  ${what} (${((Date.now() - started) / 1000).toFixed(1)}s)`);

  const ports = {
    etcdClient: await freePort(),
    etcdPeer: await freePort(),
    apiServer: await freePort(),
    controllerManager: await freePort(),
    scheduler: await freePort(),
    kwok: await freePort(),
  };
  const processes: ManagedProcess[] = [];
  const stopAll = async () => {
    for (const p of [...processes].reverse()) await p.stop(5_000);
    processes.length = 0;
  };

  try {
    const etcdArgs = [
      '--name=etcd',
      `--data-dir=${join(runDir, 'etcd')}`,
      `--listen-client-urls=http://127.0.0.1:${ports.etcdClient}`,
      `--advertise-client-urls=http://127.0.0.1:${ports.etcdClient}`,
      `--listen-peer-urls=http://127.0.0.1:${ports.etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${ports.etcdPeer}`,
      `--initial-cluster=etcd=http://127.0.0.1:${ports.etcdPeer}`,
      // A throwaway test cluster: durability is not worth the fsync latency on a shared disk.
      '--unsafe-no-fsync',
      '--quota-backend-bytes=4294967296',
      '--log-level=warn',
    ];
    const etcdReady = (p: ManagedProcess) =>
      waitReady(p, 'etcd', async () => {
        const res = await fetch(`http://127.0.0.1:${ports.etcdClient}/health`);
        return res.ok && ((await res.json()) as { health?: string }).health === 'true' ? true : undefined;
      });
    let etcd = startProcess('etcd', bin('etcd'), etcdArgs, spawnOpts);
    processes.push(etcd);
    await etcdReady(etcd);
    step('etcd ready');

    const adminToken = randomBytes(24).toString('hex');
    const tokensFile = join(dirs.pki, 'tokens.csv');
    // One cluster-admin identity for the tests, the user and the components: this is a throwaway cluster.
    writeFileSync(tokensFile, `${adminToken},admin,admin,system:masters\n`, { mode: 0o600 });
    const saKey = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    writeFileSync(join(dirs.pki, 'sa.key'), saKey.privateKey, { mode: 0o600 });
    writeFileSync(join(dirs.pki, 'sa.pub'), saKey.publicKey);

    // Every request made with a service-account token is logged (metadata only, when it completes), so
    // a test run can show each request the chart's RBAC refused the operator.
    const auditPolicy = join(dirs.pki, 'audit-policy.yaml');
    writeFileSync(
      auditPolicy,
      stringify({
        apiVersion: 'audit.k8s.io/v1',
        kind: 'Policy',
        omitStages: ['RequestReceived', 'ResponseStarted'],
        rules: [{ level: 'Metadata', userGroups: ['system:serviceaccounts'] }, { level: 'None' }],
      }),
    );
    const auditLogPath = join(runDir, 'audit.log');

    const server = `https://127.0.0.1:${ports.apiServer}`;
    const apiServerArgs = [
      `--etcd-servers=http://127.0.0.1:${ports.etcdClient}`,
      `--cert-dir=${dirs.pki}`,
      `--secure-port=${ports.apiServer}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      // Endpoints may not name a loopback address, so the kubernetes Service gets none.
      '--endpoint-reconciler-type=none',
      '--service-cluster-ip-range=10.96.0.0/16',
      '--allow-privileged=true',
      // Pods would otherwise race the service-account controller for their namespace's default account.
      '--disable-admission-plugins=ServiceAccount',
      // As OpenShift runs by default: an owner reference that blocks the owner's deletion needs the right
      // to update the owner's finalizers, so a permission the chart lacks for it fails here too.
      '--enable-admission-plugins=OwnerReferencesPermissionEnforcement',
      '--authorization-mode=RBAC',
      `--token-auth-file=${tokensFile}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${join(dirs.pki, 'sa.pub')}`,
      `--service-account-signing-key-file=${join(dirs.pki, 'sa.key')}`,
      '--profiling=false',
      ...(options.auditLog === false
        ? []
        : [
            `--audit-policy-file=${auditPolicy}`,
            `--audit-log-path=${auditLogPath}`,
            '--audit-log-format=json',
            '--audit-log-maxsize=512',
          ]),
      ...(options.apiServerExtraArgs ?? []),
    ];
    let apiServer = startProcess('kube-apiserver', bin('kube-apiserver'), apiServerArgs, spawnOpts);
    processes.push(apiServer);
    const apiServerReady = (p: ManagedProcess) =>
      waitReady(
        p,
        'kube-apiserver',
        async () => {
          const res = await httpsGet(`${server}/readyz`, adminToken);
          return res.status === 200 ? true : undefined;
        },
        90_000,
      );
    await apiServerReady(apiServer);
    step('kube-apiserver ready');

    // The API server signs its serving certificate with a CA it generates into --cert-dir on first start
    // and reuses on restarts, so the kubeconfig can trust it.
    const caData = Buffer.from(readFileSync(join(dirs.pki, 'apiserver.crt'))).toString('base64');
    const kubeconfigPath = join(runDir, 'kubeconfig');
    writeFileSync(kubeconfigPath, kubeconfigYaml(server, caData, adminToken), { mode: 0o600 });
    const kubeConfig = () => {
      const kc = new KubeConfig();
      kc.loadFromFile(kubeconfigPath);
      return kc;
    };

    const componentArgs = (port: number) => [
      `--kubeconfig=${kubeconfigPath}`,
      `--authentication-kubeconfig=${kubeconfigPath}`,
      `--authorization-kubeconfig=${kubeconfigPath}`,
      '--leader-elect=false',
      '--bind-address=127.0.0.1',
      `--secure-port=${port}`,
      ...(options.componentApiQps
        ? [`--kube-api-qps=${options.componentApiQps}`, `--kube-api-burst=${options.componentApiQps * 2}`]
        : []),
    ];
    const controllerManager = startProcess(
      'kube-controller-manager',
      bin('kube-controller-manager'),
      [
        ...componentArgs(ports.controllerManager),
        `--service-account-private-key-file=${join(dirs.pki, 'sa.key')}`,
        `--root-ca-file=${join(dirs.pki, 'apiserver.crt')}`,
        `--cluster-name=${clusterName}`,
        '--use-service-account-credentials=false',
      ],
      spawnOpts,
    );
    processes.push(controllerManager);
    const scheduler = startProcess(
      'kube-scheduler',
      bin('kube-scheduler'),
      componentArgs(ports.scheduler),
      spawnOpts,
    );
    processes.push(scheduler);

    const client = createKubeClient(accessFromKubeconfig(kubeconfigPath));
    await installKwokStages(client, toolsDir);
    step('kwok stages installed');
    const kwokConfig = join(runDir, 'kwok.yaml');
    // An empty config keeps kwok's defaults and stops it from reading the user's ~/.kwok/kwok.yaml.
    writeFileSync(kwokConfig, '');
    const kwokArgs = [
      `--kubeconfig=${kubeconfigPath}`,
      `--config=${kwokConfig}`,
      '--manage-all-nodes=false',
      '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
      `--cidr=${podCidr}`,
      '--node-lease-duration-seconds=40',
      '--enable-crds=Stage',
      `--server-address=127.0.0.1:${ports.kwok}`,
    ];
    let kwok = startProcess('kwok', bin('kwok'), kwokArgs, spawnOpts);
    processes.push(kwok);

    for (const [p, port] of [
      [controllerManager, ports.controllerManager],
      [scheduler, ports.scheduler],
    ] as const) {
      await waitReady(p, p.name, async () => {
        const res = await httpsGet(`https://127.0.0.1:${port}/healthz`);
        return res.status === 200 ? true : undefined;
      });
    }
    step('kube-controller-manager and kube-scheduler healthy');

    const fleet = options.fleet ?? hospitalFleet;
    for (const machine of fleet) await client.create(nodeManifest(machine) as KubeObject);
    // kwok is the simulator, not the system under test: one exit during start-up gets one restart.
    await new Promise((resolve) => setTimeout(resolve, 500));
    if (!kwok.isRunning()) {
      log(
        `  kwok exited at start-up (${await kwok.exited}); restarting it once. Its log:\n${await kwok.logTail(10)}`,
      );
      const failed = kwok;
      kwok = startProcess('kwok-restarted', bin('kwok'), kwokArgs, spawnOpts);
      processes[processes.indexOf(failed)] = kwok;
    }
    await waitReady(kwok, 'kwok nodes Ready', async () => {
      const nodes = await client.list<KubeObject & V1Node>('v1', 'Node');
      const ready = nodes.items.filter(isNodeReady).length;
      return ready === fleet.length ? true : undefined;
    });
    step(`${fleet.length} nodes Ready`);

    return {
      kubeconfigPath,
      server,
      runDir,
      auditLogPath,
      etcdUrl: `http://127.0.0.1:${ports.etcdClient}`,
      kubeConfig,
      access: () => accessFromKubeconfig(kubeconfigPath),
      apiServer: () => apiServer,
      async killApiServer() {
        await apiServer.kill();
      },
      async startApiServer() {
        if (apiServer.isRunning()) return;
        const index = processes.indexOf(apiServer);
        apiServer = startProcess('kube-apiserver', bin('kube-apiserver'), apiServerArgs, spawnOpts);
        processes[index] = apiServer;
        await apiServerReady(apiServer);
      },
      async killEtcd() {
        await etcd.kill();
      },
      async startEtcd() {
        if (etcd.isRunning()) return;
        const index = processes.indexOf(etcd);
        etcd = startProcess('etcd', bin('etcd'), etcdArgs, spawnOpts);
        processes[index] = etcd;
        await etcdReady(etcd);
        // The API server reconnects on its own; it is ready again once it can reach etcd.
        await apiServerReady(apiServer);
      },
      async stop() {
        await stopAll();
        rmSync(runDir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await stopAll();
    // The run directory is reaped by the next start; its logs are kept where a person can read them.
    const kept = join(toolsDir, 'last-failure');
    rmSync(kept, { recursive: true, force: true });
    cpSync(dirs.logs, kept, { recursive: true });
    throw new Error(`${(err as Error).message}\n(all component logs: ${kept})`);
  }
}

export function isNodeReady(node: V1Node): boolean {
  return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/** Waits for check to pass, failing fast with the log tail if the process exits meanwhile. */
async function waitReady(
  p: ManagedProcess,
  what: string,
  check: () => Promise<true | undefined>,
  timeoutMs = 60_000,
): Promise<void> {
  let settled = false;
  // A component that exits while starting fails the start at once, not at the time-out.
  const exited = p.exited.then(async (code) => {
    if (!settled) throw new Error(`${p.name} exited (${code}); last log lines:\n${await p.logTail()}`);
  });
  const ready = waitFor(
    what,
    async () => {
      if (!p.isRunning()) {
        throw new Error(`${p.name} exited (${await p.exited}); last log lines:\n${await p.logTail()}`);
      }
      return check();
    },
    { timeoutMs },
  ).catch(async (err: Error) => {
    if (!p.isRunning() || err.message.includes('exited')) throw err;
    throw new Error(`${err.message}\n${p.name} log (${p.logPath}):\n${await p.logTail()}`);
  });
  try {
    await Promise.race([ready, exited]);
  } finally {
    settled = true;
    ready.catch(() => {});
  }
}

/**
 * kwok runs with its Stage CRD enabled, so tests can add stages (a crash loop, an OOM kill) at run time.
 * The CRD and the default node and pod stages come from the kwok module the build script fetched.
 */
async function installKwokStages(client: KubeClient, toolsDir: string): Promise<void> {
  const assets = join(toolsDir, 'kwok');
  const crdFile = join(assets, 'stages-crd.yaml');
  const stagesFile = join(assets, 'default-stages.yaml');
  if (!existsSync(crdFile) || !existsSync(stagesFile)) {
    throw new Error(`kwok assets missing in ${assets}: run 'npm run build:control-plane'`);
  }
  const crd = parseYamlObjects(readFileSync(crdFile, 'utf8'))[0];
  if (!crd) throw new Error(`${crdFile} holds no object`);
  await client.create(crd);
  type Crd = KubeObject & { status?: { conditions?: Array<{ type: string; status: string }> } };
  await waitFor('kwok Stage CRD established', async () => {
    const got = await client.get<Crd>(crd);
    return got?.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')
      ? true
      : undefined;
  });
  // The CRD can be Established a moment before its resource is served, so the first create may 404.
  for (const stage of parseYamlObjects(readFileSync(stagesFile, 'utf8'))) {
    await waitFor(
      `stage ${stage.metadata?.name} created`,
      async () => {
        await client.create(stage);
        return true;
      },
      { timeoutMs: 15_000 },
    );
  }
}

export function parseYamlObjects(text: string): KubeObject[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => o !== null && typeof o === 'object' && 'kind' in o);
}

function kubeconfigYaml(server: string, caData: string, token: string): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: clusterName, cluster: { server, 'certificate-authority-data': caData } }],
    users: [{ name: 'admin', user: { token } }],
    contexts: [{ name: clusterName, context: { cluster: clusterName, user: 'admin' } }],
    'current-context': clusterName,
  });
}

export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((ok) => srv.listen(0, '127.0.0.1', ok));
  const address = srv.address();
  await new Promise<void>((ok) => srv.close(() => ok()));
  if (address === null || typeof address === 'string') throw new Error('could not find a free port');
  return address.port;
}

/** A GET that skips certificate checks: only for probing local components before the CA is known. */
function httpsGet(url: string, token?: string): Promise<{ status: number; body: string }> {
  return new Promise((ok, fail) => {
    const req = request(
      url,
      {
        rejectUnauthorized: false,
        timeout: 5_000,
        headers: token ? { authorization: `Bearer ${token}` } : {},
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => ok({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout: ${url}`)));
    req.on('error', fail);
    req.end();
  });
}
