// The floor the triage server is measured against: a bare node:http server that reads each request
// body and answers a JSON body of the same size as a triage answer, with no model and no checks.
// Usage: node bench/bare-server.ts <port>
import { createServer } from 'node:http';

const answer = JSON.stringify({
  label: 'low-medium',
  probabilities: { high: 0.0123456789, medium: 0.0234567891, 'low-medium': 0.9123456789, low: 0.0518518531 },
  modelVersion: '1.0.0',
  modelDigest: `sha256:${'c'.repeat(64)}`,
});
const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    if (chunks.length > 0) JSON.parse(Buffer.concat(chunks).toString('utf8'));
    res.writeHead(200, { 'content-type': 'application/json' }).end(answer);
  });
});
server.listen(Number(process.argv[2]), '127.0.0.1', () => console.log('bare server listening'));
process.once('SIGTERM', () => server.close(() => process.exit(0)));
