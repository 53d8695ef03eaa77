// One address for a pool's triage servers in the sandbox: simulated nodes run no containers and have no
// Service network, so requests to this local port go round robin to the processes that stand for the
// pool's ready pods, as a Service would spread them.
import { createServer, type IncomingMessage } from 'node:http';
import { freePort } from './control-plane.ts';

const readBody = async (req: IncomingMessage, limitBytes: number): Promise<Buffer> => {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limitBytes) throw new Error('request body too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
};

/** Starts the proxy; `backends` gives the base URLs of the processes running now. */
export async function startClassifyProxy(backends: () => string[]) {
  const port = await freePort();
  let next = 0;
  const server = createServer((req, res) => {
    void (async () => {
      const urls = backends();
      if (urls.length === 0) {
        res.writeHead(503, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'no triage server of the pool is running yet' }));
        return;
      }
      const target = urls[next++ % urls.length];
      try {
        const body = req.method === 'GET' || req.method === 'HEAD' ? undefined : await readBody(req, 1 << 20);
        const answer = await fetch(`${target}${req.url ?? '/'}`, {
          method: req.method ?? 'GET',
          headers: { 'content-type': req.headers['content-type'] ?? 'application/json' },
          ...(body ? { body } : {}),
        });
        res.writeHead(answer.status, {
          'content-type': answer.headers.get('content-type') ?? 'application/json',
          'x-aurora-served-by': new URL(target ?? 'http://unknown').port,
        });
        res.end(Buffer.from(await answer.arrayBuffer()));
      } catch (err) {
        res.writeHead(502, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: `the triage server did not answer: ${(err as Error).message}` }));
      }
    })();
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
