import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import type { TlsSettings } from '../http.ts';

/**
 * How to reach and authenticate to one API server. Aurora reads kubeconfig files and the pod's service
 * account itself: client-node's loader brings its whole generated API (about 60 MiB resident) for what
 * is a few fields and a TLS agent.
 */
export interface ClusterAccess {
  readonly server: string;
  /** The headers that authenticate a request (a bearer token is read anew where it rotates). */
  authHeaders(): Promise<Record<string, string>>;
  /** TLS as the cluster asks: its CA, a client certificate, or no verification. */
  readonly tls: TlsSettings;
}

export class AccessError extends Error {
  override name = 'AccessError';
}

const serviceAccountDir = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface AccessOptions {
  server: string;
  token?: string;
  /** Read at most once a minute: projected service-account tokens rotate. */
  tokenFile?: string;
  username?: string;
  password?: string;
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  insecureSkipTlsVerify?: boolean;
  /** A client-go credential plugin that prints an ExecCredential with a token. */
  exec?: { command: string; args?: string[]; env?: Array<{ name: string; value: string }> };
}

const execFileAsync = promisify(execFile);

/** Access from explicit settings (what a kubeconfig user and cluster say). */
export function clusterAccess(options: AccessOptions): ClusterAccess {
  const server = options.server.replace(/\/$/, '');
  const tls: TlsSettings = {
    ...(options.ca ? { ca: options.ca } : {}),
    ...(options.cert ? { cert: options.cert } : {}),
    ...(options.key ? { key: options.key } : {}),
    rejectUnauthorized: !options.insecureSkipTlsVerify,
  };
  let fileToken: { value: string; readAt: number } | undefined;
  let execToken: { value: string; expiresAt: number } | undefined;
  const bearer = async (): Promise<string | undefined> => {
    if (options.token) return options.token;
    if (options.tokenFile) {
      if (!fileToken || Date.now() - fileToken.readAt > 60_000)
        fileToken = { value: readFileSync(options.tokenFile, 'utf8').trim(), readAt: Date.now() };
      return fileToken.value;
    }
    if (options.exec) {
      if (!execToken || Date.now() > execToken.expiresAt - 60_000) {
        const env = {
          ...process.env,
          ...Object.fromEntries((options.exec.env ?? []).map((e) => [e.name, e.value])),
        };
        // A plugin that hangs must not stall every request for ever.
        const { stdout } = await execFileAsync(options.exec.command, options.exec.args ?? [], {
          env,
          timeout: 30_000,
        });
        const credential = JSON.parse(stdout) as {
          status?: { token?: string; expirationTimestamp?: string };
        };
        const token = credential.status?.token;
        if (!token)
          throw new AccessError(
            `${options.exec.command} gave no token (client certificates from exec plugins are not supported)`,
          );
        const expires = Date.parse(credential.status?.expirationTimestamp ?? '');
        execToken = {
          value: token,
          expiresAt: Number.isFinite(expires) ? expires : Date.now() + 10 * 60_000,
        };
      }
      return execToken.value;
    }
    return undefined;
  };
  return {
    server,
    tls,
    async authHeaders(): Promise<Record<string, string>> {
      const token = await bearer();
      if (token) return { authorization: `Bearer ${token}` };
      if (options.username !== undefined)
        return {
          authorization: `Basic ${Buffer.from(`${options.username}:${options.password ?? ''}`).toString('base64')}`,
        };
      return {};
    },
  };
}

interface KubeconfigFile {
  'current-context'?: string;
  contexts?: Array<{ name: string; context: { cluster: string; user?: string } }>;
  clusters?: Array<{
    name: string;
    cluster: {
      server: string;
      'certificate-authority'?: string;
      'certificate-authority-data'?: string;
      'insecure-skip-tls-verify'?: boolean;
    };
  }>;
  users?: Array<{
    name: string;
    user?: {
      token?: string;
      tokenFile?: string;
      username?: string;
      password?: string;
      'client-certificate'?: string;
      'client-certificate-data'?: string;
      'client-key'?: string;
      'client-key-data'?: string;
      exec?: AccessOptions['exec'];
    };
  }>;
}

/** Access as a kubeconfig file's current context describes it (paths relative to the file). */
export function accessFromKubeconfig(path: string): ClusterAccess {
  const file = parse(readFileSync(path, 'utf8')) as KubeconfigFile;
  const contextName = file['current-context'];
  const context = file.contexts?.find((c) => c.name === contextName)?.context;
  if (!context) throw new AccessError(`${path} has no current context`);
  const cluster = file.clusters?.find((c) => c.name === context.cluster)?.cluster;
  if (!cluster?.server)
    throw new AccessError(`${path}: context ${contextName} names no cluster with a server`);
  const user = file.users?.find((u) => u.name === context.user)?.user ?? {};
  const relative = (p: string) => (isAbsolute(p) ? p : join(dirname(path), p));
  const data = (inline: string | undefined, file: string | undefined) =>
    inline ? Buffer.from(inline, 'base64') : file ? readFileSync(relative(file)) : undefined;
  const ca = data(cluster['certificate-authority-data'], cluster['certificate-authority']);
  const cert = data(user['client-certificate-data'], user['client-certificate']);
  const key = data(user['client-key-data'], user['client-key']);
  return clusterAccess({
    server: cluster.server,
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
    ...(cluster['insecure-skip-tls-verify'] ? { insecureSkipTlsVerify: true } : {}),
    ...(user.token ? { token: user.token } : {}),
    ...(user.tokenFile ? { tokenFile: relative(user.tokenFile) } : {}),
    ...(user.username !== undefined ? { username: user.username, password: user.password ?? '' } : {}),
    ...(user.exec ? { exec: user.exec } : {}),
  });
}

/** The pod's own service account: the API server from the environment, the token and CA from their mount. */
export function accessInCluster(): ClusterAccess {
  const host = process.env.KUBERNETES_SERVICE_HOST;
  const port = process.env.KUBERNETES_SERVICE_PORT ?? '443';
  if (!host) throw new AccessError('KUBERNETES_SERVICE_HOST is not set: not running in a cluster');
  return clusterAccess({
    server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    tokenFile: join(serviceAccountDir, 'token'),
    ca: readFileSync(join(serviceAccountDir, 'ca.crt')),
  });
}

/** The cluster to talk to: the kubeconfig named, else the pod's service account, else ~/.kube/config. */
export function loadClusterAccess(kubeconfig: string | undefined): ClusterAccess {
  if (kubeconfig) return accessFromKubeconfig(kubeconfig);
  if (process.env.KUBERNETES_SERVICE_HOST) return accessInCluster();
  const fromEnv = process.env.KUBECONFIG?.split(':')[0];
  return accessFromKubeconfig(fromEnv || join(homedir(), '.kube', 'config'));
}

/** The same access through another address (a proxy in front of the API server, in tests). */
export function withServer(access: ClusterAccess, server: string): ClusterAccess {
  return { ...access, server: server.replace(/\/$/, ''), authHeaders: () => access.authHeaders() };
}
