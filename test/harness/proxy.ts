import { createServer, type Server, type Socket } from 'node:net';

export interface PausableProxy {
  readonly port: number;
  /** Cuts every open connection and refuses new ones, as a network partition would. */
  pause(): void;
  resume(): void;
  /** Bytes sent from the server to clients so far (TLS included): what a client downloaded. */
  bytesToClients(): number;
  close(): Promise<void>;
}

/** A TCP proxy to 127.0.0.1:targetPort that a test can partition on cue (TLS passes through untouched). */
export async function startPausableProxy(targetPort: number): Promise<PausableProxy> {
  const open = new Set<Socket>();
  let paused = false;
  let downloaded = 0;
  const server: Server = createServer((client) => {
    if (paused) {
      client.destroy();
      return;
    }
    const upstream = new (client.constructor as typeof Socket)();
    upstream.connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      open.add(s);
      s.on('close', () => open.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.on('data', (chunk: Buffer) => {
      downloaded += chunk.length;
    });
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy has no port');
  return {
    port: address.port,
    pause() {
      paused = true;
      for (const s of open) s.destroy();
    },
    resume() {
      paused = false;
    },
    bytesToClients: () => downloaded,
    async close() {
      for (const s of open) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
