import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

/** A response as the API client reads it: status and headers at once, the body as text or a stream. */
export interface HttpResponse {
  status: number;
  statusText: string;
  header(name: string): string | undefined;
  /** The body stream (a watch reads it line by line). */
  body: IncomingMessage;
  text(): Promise<string>;
}

/** TLS as the cluster asks it: its CA, a client certificate, or no verification. */
export interface TlsSettings {
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  rejectUnauthorized?: boolean;
}

/**
 * Keep-alive connections to one server. Node's own http(s) modules, not undici: the operator holds
 * every byte it loads for its whole life, and undici's module alone is some 25 MiB resident.
 */
export function keepAliveAgent(server: string, tls: TlsSettings = {}): HttpAgent {
  return server.startsWith('https:')
    ? new HttpsAgent({ keepAlive: true, ...tls })
    : new HttpAgent({ keepAlive: true });
}

/** One request; rejects with the signal's reason when it aborts (the connection is destroyed). */
export function send(
  url: URL,
  options: {
    method: string;
    headers: Record<string, string>;
    body?: string;
    agent: HttpAgent;
    signal?: AbortSignal;
  },
): Promise<HttpResponse> {
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    options.signal?.throwIfAborted();
    const req = request(url, {
      method: options.method,
      headers: {
        ...options.headers,
        ...(options.body !== undefined ? { 'content-length': String(Buffer.byteLength(options.body)) } : {}),
      },
      agent: options.agent,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    req.once('error', (err) => reject(options.signal?.aborted ? options.signal.reason : err));
    req.once('response', (res) => {
      resolve({
        status: res.statusCode ?? 0,
        statusText: res.statusMessage ?? '',
        header: (name) => {
          const value = res.headers[name.toLowerCase()];
          return Array.isArray(value) ? value.join(', ') : value;
        },
        body: res,
        text: async () => {
          const chunks: Buffer[] = [];
          for await (const chunk of res) chunks.push(chunk as Buffer);
          return Buffer.concat(chunks).toString('utf8');
        },
      });
    });
    req.end(options.body);
  });
}
