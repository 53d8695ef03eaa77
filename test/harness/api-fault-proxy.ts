// An HTTP proxy between the operator and the API server that a test can turn hostile: answer 429 and 500
// for a while, as an overloaded or failing API server does, and cut every open connection, watches
// mid-stream among them. The operator talks plain HTTP to it (on 127.0.0.1) and the proxy talks HTTPS
// to the API server, passing the operator's own credentials through, so RBAC is unchanged.
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Agent, request } from 'node:https';
import type { Socket } from 'node:net';
import { parse, stringify } from 'yaml';
import type { ClusterAccess } from '../../operator/kube/access.ts';

export interface ApiFaultProxy {
  /** The URL clients use: http://127.0.0.1:<port>. */
  readonly server: string;
  /** From now on, every request is answered 429 (with Retry-After: 1) or 500, in turn. */
  failRequests(): void;
  /** Requests pass again. */
  heal(): void;
  /** Cuts every open connection at once; returns how many were open. */
  cutConnections(): number;
  /** Requests answered with an injected error so far. */
  injected(): number;
  close(): Promise<void>;
}

export async function startApiFaultProxy(upstream: ClusterAccess): Promise<ApiFaultProxy> {
  const target = new URL(upstream.server);
  const agent = new Agent({ keepAlive: true, ...upstream.tls });
  const sockets = new Set<Socket>();
  let failing = false;
  let injected = 0;

  const refuse = (res: ServerResponse) => {
    const code = injected++ % 2 === 0 ? 429 : 500;
    const status = {
      kind: 'Status',
      apiVersion: 'v1',
      status: 'Failure',
      code,
      reason: code === 429 ? 'TooManyRequests' : 'InternalError',
      message: code === 429 ? 'injected: too many requests' : 'injected: internal error',
    };
    res.writeHead(code, {
      'content-type': 'application/json',
      ...(code === 429 ? { 'retry-after': '1' } : {}),
    });
    res.end(JSON.stringify(status));
  };

  const forward = (req: IncomingMessage, res: ServerResponse) => {
    if (failing) {
      req.resume();
      refuse(res);
      return;
    }
    const out = request(
      {
        protocol: target.protocol,
        hostname: target.hostname,
        port: target.port,
        path: req.url,
        method: req.method,
        headers: { ...req.headers, host: target.host },
        agent,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
        answer.on('error', () => res.destroy());
      },
    );
    // An API server that is down or restarting: the client sees its connection reset, as it would.
    out.on('error', () => res.destroy());
    res.on('close', () => out.destroy());
    req.pipe(out);
  };

  const server = createServer(forward);
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the proxy has no port');
  return {
    server: `http://127.0.0.1:${address.port}`,
    failRequests() {
      failing = true;
    },
    heal() {
      failing = false;
    },
    cutConnections() {
      const n = sockets.size;
      for (const s of sockets) s.destroy();
      return n;
    },
    injected: () => injected,
    async close() {
      for (const s of sockets) s.destroy();
      agent.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A copy of a kubeconfig that reaches the cluster through the proxy (same user and credentials). */
export function kubeconfigThroughProxy(kubeconfigPath: string, proxyServer: string, outPath: string): string {
  const config = parse(readFileSync(kubeconfigPath, 'utf8')) as {
    clusters: Array<{ name: string; cluster: Record<string, unknown> }>;
  };
  config.clusters = config.clusters.map((c) => ({ name: c.name, cluster: { server: proxyServer } }));
  writeFileSync(outPath, stringify(config), { mode: 0o600 });
  return outPath;
}
