import { describe, expect, it } from 'vitest';
import {
  type AuditEntry,
  canonicalContent,
  genesisHash,
  rowHash,
  type StoredRow,
  verifyChain,
} from './audit.ts';

const entry = (n: number): AuditEntry => ({
  type: 'Intent',
  atMs: 1_800_000_000_000 + n,
  operator: 'aurora-0',
  policy: { namespace: 'er', name: 'heal', uid: 'p-1' },
  target: { kind: 'Deployment', namespace: 'er', name: `svc-${n}`, uid: `t-${n}` },
  action: 'RestartPod',
  step: 0,
});

/** A trail of n rows written the way append writes them. */
function chain(n: number): StoredRow[] {
  const rows: StoredRow[] = [];
  for (let seq = 1; seq <= n; seq++) {
    const prevHash = rows.at(-1)?.hash ?? genesisHash;
    const content = canonicalContent(entry(seq), seq);
    rows.push({ seq, content, prevHash, hash: rowHash(prevHash, content) });
  }
  return rows;
}

describe('canonicalContent', () => {
  it('encodes the same entry the same way whatever the order of its keys', () => {
    const a = canonicalContent({ ...entry(1), details: { b: 1, a: 'x' } }, 1);
    const b = canonicalContent({ details: { a: 'x', b: 1 }, ...entry(1) }, 1);
    expect(a).toBe(b);
    expect(a).toContain('"seq":1');
  });
});

describe('verifyChain', () => {
  const rewrite = (rows: StoredRow[], seq: number, change: (r: StoredRow) => StoredRow) =>
    rows.map((r) => (r.seq === seq ? change(r) : r));

  it.each([
    ['an intact trail', chain(6), { ok: true, rows: 6 }],
    ['an empty trail', [], { ok: true, rows: 0 }],
    [
      'content changed',
      rewrite(chain(6), 3, (r) => ({ ...r, content: r.content.replace('RestartPod', 'ScaleOut') })),
      { ok: false, problem: 'changed', seq: 3 },
    ],
    [
      'content changed and its hash recomputed',
      (() => {
        const rows = rewrite(chain(6), 3, (r) => {
          const content = r.content.replace('RestartPod', 'ScaleOut');
          return { ...r, content, hash: rowHash(r.prevHash, content) };
        });
        return rows;
      })(),
      // Row 3 is intact on its own; row 4 no longer links to it.
      { ok: false, problem: 'changed', seq: 3 },
    ],
    ['a middle row removed', chain(6).filter((r) => r.seq !== 3), { ok: false, problem: 'removed', seq: 3 }],
    ['the first row removed', chain(4).slice(1), { ok: false, problem: 'removed', seq: 1 }],
    [
      'a row removed and the later ones renumbered',
      chain(6)
        .filter((r) => r.seq !== 3)
        .map((r) => (r.seq > 3 ? { ...r, seq: r.seq - 1 } : r)),
      { ok: false, problem: 'removed', seq: 3 },
    ],
    [
      'a forged row inserted, the later ones renumbered',
      (() => {
        const rows = chain(6);
        const prevHash = rows[1]?.hash ?? '';
        const content = canonicalContent(entry(99), 3);
        const forged = { seq: 3, content, prevHash, hash: rowHash(prevHash, content) };
        return [...rows.slice(0, 2), forged, ...rows.slice(2).map((r) => ({ ...r, seq: r.seq + 1 }))];
      })(),
      { ok: false, problem: 'inserted', seq: 3 },
    ],
    [
      'a forged row appended with an old position',
      (() => {
        const rows = chain(6);
        const prevHash = rows[1]?.hash ?? '';
        const content = canonicalContent(entry(99), 3);
        return [...rows, { seq: 7, content, prevHash, hash: rowHash(prevHash, content) }];
      })(),
      { ok: false, problem: 'inserted', seq: 7 },
    ],
    [
      'two rows swapped',
      (() => {
        const rows = chain(6);
        const [three, four] = [rows[2], rows[3]] as [StoredRow, StoredRow];
        rows[2] = { ...four, seq: 3 };
        rows[3] = { ...three, seq: 4 };
        return rows;
      })(),
      { ok: false, problem: 'reordered', seq: 3 },
    ],
  ] as const)('%s', (_name, rows, expected) => {
    expect(verifyChain(rows)).toMatchObject(expected);
  });

  it('finds the newest rows removed only against a noted head', () => {
    const full = chain(6);
    const head = { seq: 6, hash: full[5]?.hash ?? '' };
    expect(verifyChain(full.slice(0, 5))).toMatchObject({ ok: true });
    expect(verifyChain(full.slice(0, 5), head)).toMatchObject({ ok: false, problem: 'removed', seq: 6 });
    expect(verifyChain(full, head)).toMatchObject({ ok: true, head });
    expect(verifyChain(full, { seq: 6, hash: genesisHash })).toMatchObject({ ok: false, problem: 'changed' });
  });
});
