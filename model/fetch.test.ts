import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downloadToFile, fetchHttp } from './fetch.ts';
import { sha256 } from './source.ts';

const body = Buffer.from('model bytes');
const server = createServer((req, res) => {
  if (req.url === '/private.onnx') {
    const expected = `Basic ${Buffer.from('reader:s3cr3t pw').toString('base64')}`;
    if (req.headers.authorization !== expected) return void res.writeHead(401).end();
    return void res.writeHead(200).end(body);
  }
  if (req.url === '/bad-redirect.onnx') return void res.writeHead(302, { location: 'http://[bad' }).end();
  if (req.url === '/silent.onnx') {
    // Headers, one byte, then nothing.
    res.writeHead(200).write(Buffer.from([1]));
    return;
  }
  if (req.url === '/trickle.onnx') {
    // A byte every 100 ms: never idle long, but far too slow.
    res.writeHead(200);
    const timer = setInterval(() => res.write(Buffer.from([1])), 100);
    res.once('close', () => clearInterval(timer));
    return;
  }
  res.writeHead(200).end(body);
});
let port = 0;
beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
});

/** A port nothing listens on any more. */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port: free } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return free;
}

const source = (host: string, path = '/m.onnx', digest = sha256(body)) => ({
  url: `http://${host}:${port}${path}`,
  sha256: digest,
  timeoutSeconds: 30,
  maxSizeMiB: 1,
});
const strict = { maxModelMiB: 1, allowLoopback: false };
const local = { maxModelMiB: 1, allowLoopback: true };

describe('model downloads: egress rules', () => {
  it('refuses loopback by default, as a literal address', async () => {
    const result = await fetchHttp(source('127.0.0.1'), strict);
    expect(result).toMatchObject({ ok: false, reason: 'SourceForbidden' });
    if (!result.ok) expect(result.message).toMatch(/127\.0\.0\.1 is a loopback address/);
  });

  it('refuses loopback by default when a name resolves to it, checked at connect time', async () => {
    const result = await fetchHttp(source('localhost'), strict);
    expect(result).toMatchObject({ ok: false, reason: 'SourceForbidden' });
    if (!result.ok) expect(result.message).toMatch(/localhost resolves to a loopback address/);
  });

  it('fetches from loopback when allowed, and checks the digest', async () => {
    const result = await fetchHttp(source('localhost'), local);
    expect(result).toEqual({ ok: true, bytes: body, digest: sha256(body), sizeBytes: body.length });
  });
});

describe('model downloads to disk', () => {
  const dir = mkdtempSync(join(tmpdir(), 'aurora-fetch-'));

  it('writes the file as it arrives and reports its digest and size, holding no bytes', async () => {
    const file = join(dir, 'good.onnx');
    const result = await downloadToFile(source('127.0.0.1'), file, local);
    expect(result).toEqual({ ok: true, digest: sha256(body), sizeBytes: body.length });
    expect(readFileSync(file)).toEqual(body);
  });

  it('removes the file when the digest is not the one pinned', async () => {
    const file = join(dir, 'mismatch.onnx');
    const result = await downloadToFile(source('127.0.0.1', '/m.onnx', 'f'.repeat(64)), file, local);
    expect(result).toMatchObject({ ok: false, reason: 'DigestMismatch' });
    expect(existsSync(file)).toBe(false);
  });

  it('cuts off a source that goes silent, long before its time limit', async () => {
    const file = join(dir, 'silent.onnx');
    const t0 = performance.now();
    const result = await downloadToFile(source('127.0.0.1', '/silent.onnx'), file, {
      ...local,
      idleTimeoutMs: 600,
    });
    expect(performance.now() - t0).toBeLessThan(3000);
    expect(result).toMatchObject({ ok: false, reason: 'SourceUnavailable' });
    if (!result.ok) expect(result.message).toMatch(/nothing arrived for 1 s/);
    expect(existsSync(file)).toBe(false);
  });

  it('cuts off a source that trickles below the least rate', async () => {
    const result = await downloadToFile(source('127.0.0.1', '/trickle.onnx'), join(dir, 'trickle.onnx'), {
      ...local,
      idleTimeoutMs: 500,
      minBytesPerSecond: 1000,
    });
    expect(result).toMatchObject({ ok: false, reason: 'SourceUnavailable' });
    if (!result.ok) expect(result.message).toMatch(/arrived at \d+ bytes\/s, below the least of 1000/);
  });

  it('ends at once when stopped, reporting nothing about the source', async () => {
    const stop = new AbortController();
    const download = downloadToFile(source('127.0.0.1', '/trickle.onnx'), join(dir, 'stopped.onnx'), {
      ...local,
      signal: stop.signal,
    });
    setTimeout(() => stop.abort(new Error('the operator is stopping')), 200);
    await expect(download).rejects.toThrow('the operator is stopping');
  });

  it('sends credentials in the URL as a header, and names them nowhere in a message', async () => {
    const withCredentials = {
      ...source('127.0.0.1', '/private.onnx'),
      url: `http://reader:s3cr3t%20pw@127.0.0.1:${port}/private.onnx`,
    };
    const got = await downloadToFile(withCredentials, join(dir, 'private.onnx'), local);
    expect(got).toEqual({ ok: true, digest: sha256(body), sizeBytes: body.length });
    const closed = await closedPort();
    const refused = await downloadToFile(
      { ...withCredentials, url: `http://reader:s3cr3t%20pw@127.0.0.1:${closed}/private.onnx` },
      join(dir, 'refused.onnx'),
      local,
    );
    expect(refused).toMatchObject({ ok: false, reason: 'SourceUnavailable' });
    if (!refused.ok) {
      expect(refused.message).toBe(
        `could not download http://127.0.0.1:${closed}/private.onnx: the connection was refused`,
      );
      expect(refused.message).not.toContain('s3cr3t');
    }
  });

  it('names a URL from a Secret only by its Secret, host included', async () => {
    const refused = await downloadToFile(
      { ...source('localhost'), url: 'http://models.invalid/m.onnx?X-Amz-Signature=tok' },
      join(dir, 'secret.onnx'),
      { ...local, shownAs: 'the URL in Secret er/model-url (key url)' },
    );
    expect(refused).toMatchObject({ ok: false, reason: 'SourceUnavailable' });
    if (!refused.ok) {
      expect(refused.message).toBe(
        'could not download the URL in Secret er/model-url (key url): the host name does not resolve',
      );
    }
  });

  it('reports a redirect to something that is not a URL, and keeps no file', async () => {
    const file = join(dir, 'redirected.onnx');
    const result = await downloadToFile(source('127.0.0.1', '/bad-redirect.onnx'), file, local);
    expect(result).toMatchObject({ ok: false, reason: 'SourceUnavailable' });
    if (!result.ok) expect(result.message).toMatch(/redirected to an address that is not a URL/);
    expect(existsSync(file)).toBe(false);
  });
});
