// The layout's promises, checked on every file git tracks: imports flow one way, no controller folder
// imports another, and nothing refers to a path outside the repository (a user's clone has nothing there).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..');
const tracked = execFileSync('git', ['ls-files'], { cwd: root, encoding: 'utf8' }).trim().split('\n');
// This file's own samples of bad imports and paths are data, not references.
const self = 'hack/layout.test.ts';
const sources = tracked.filter((f) => f.endsWith('.ts') && f !== self);

/** Lower layers never import higher ones; folders not named here (test, bench, hack) may use any. */
const layers: Record<string, number> = {
  operator: 0,
  crds: 1,
  model: 2,
  placement: 2,
  views: 2,
  queue: 2,
  state: 2,
  controllers: 3,
  workloads: 4,
  cmd: 4,
};

/** Every relative import of a file, as repository paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(root, file), 'utf8');
  const specs = [...text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|^import\s+)'(\.{1,2}\/[^']+)'/gm)].map(
    (m) => m[1] as string,
  );
  return specs.map((spec) =>
    relative(root, resolve(root, dirname(file), spec))
      .split(sep)
      .join('/'),
  );
}

const inRepo = (path: string) => path === root || path.startsWith(root + sep);
const top = (path: string) => (path.includes('/') ? (path.split('/')[0] as string) : '(root)');
/** controllers/<kind> for a file in a controller's folder. */
const controllerFolder = (path: string) =>
  path.startsWith('controllers/') && path.split('/').length > 2
    ? path.split('/').slice(0, 2).join('/')
    : undefined;

/** Imports against the flow: a layer reaching a higher one, or production code reaching test/, bench/, hack/. */
function upwardImports(list: ReadonlyArray<{ from: string; to: string }>): string[] {
  return list
    .filter((e) => {
      const from = layers[top(e.from)];
      const to = layers[top(e.to)];
      // Tests may use fixtures from anywhere (hack's example model, the local cluster).
      if (e.from.endsWith('.test.ts')) return to !== undefined && from !== undefined && to > from;
      return from !== undefined && (to === undefined || to > from);
    })
    .map((e) => `${e.from} → ${e.to}`);
}

const parent = resolve(root, '..');

/**
 * Paths in a file that lead outside the repository: relative ones (read from the file's folder, or,
 * where nothing is there, from the top as prose often means them) and the absolute path of the folder
 * the repository sits in (a developer's machine, which a user's clone does not have).
 */
function outsideReferences(file: string, text: string, exists: (path: string) => boolean): string[] {
  const found: string[] = [];
  for (const m of text.matchAll(/(?:\.\.\/)+[\w.-][\w./-]*/g)) {
    const fromFile = resolve(root, dirname(file), m[0]);
    const target = exists(fromFile) ? fromFile : resolve(root, m[0]);
    if (!inRepo(fromFile) || !inRepo(target)) found.push(`${file}: ${m[0]}`);
  }
  for (const m of text.matchAll(
    new RegExp(`${parent.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/[\\w./-]+`, 'g'),
  ))
    if (!inRepo(m[0])) found.push(`${file}: ${m[0]}`);
  return found;
}

const edges = sources.flatMap((from) => importsOf(from).map((to) => ({ from, to })));

/** Strongly connected groups of more than one node: each is an import cycle. */
function cycles(graph: Map<string, Set<string>>): string[][] {
  let index = 0;
  const indexOf = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    indexOf.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!indexOf.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v) as number, indexOf.get(w) as number));
    }
    if (low.get(v) === indexOf.get(v)) {
      const group: string[] = [];
      let w: string;
      do {
        w = stack.pop() as string;
        onStack.delete(w);
        group.push(w);
      } while (w !== v);
      if (group.length > 1) found.push(group.sort());
    }
  };
  for (const v of graph.keys()) if (!indexOf.has(v)) visit(v);
  return found;
}

function graphOf(pairs: Array<[string, string]>): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  for (const [a, b] of pairs) {
    if (a === b) continue;
    graph.set(a, (graph.get(a) ?? new Set()).add(b));
    if (!graph.has(b)) graph.set(b, new Set());
  }
  return graph;
}

describe('the layout', () => {
  it('resolves every relative import to a tracked file', () => {
    const files = new Set(tracked);
    expect(edges.filter((e) => !files.has(e.to)).map((e) => `${e.from} → ${e.to}`)).toEqual([]);
  });

  it('has no import cycle between top-level folders', () => {
    expect(cycles(graphOf(edges.map((e) => [top(e.from), top(e.to)])))).toEqual([]);
  });

  it('has no import cycle between files', () => {
    expect(cycles(graphOf(edges.map((e) => [e.from, e.to])))).toEqual([]);
  });

  it('keeps every controller folder apart from the others, with no code directly under controllers/', () => {
    const crossing = edges.filter((e) => {
      const a = controllerFolder(e.from);
      const b = controllerFolder(e.to);
      return a !== undefined && b !== undefined && a !== b;
    });
    expect(crossing.map((e) => `${e.from} → ${e.to}`)).toEqual([]);
    expect(sources.filter((f) => /^controllers\/[^/]+\.ts$/.test(f))).toEqual([]);
  });

  it('imports flow one way: cmd and workloads → controllers → shared libraries → crds → the runtime', () => {
    expect(upwardImports(edges)).toEqual([]);
  });

  it('refers to no path outside the repository', () => {
    const outside: string[] = [];
    for (const file of tracked.filter((f) => f !== self)) {
      let text: string;
      try {
        text = readFileSync(join(root, file), 'utf8');
      } catch {
        continue;
      }
      if (!text.includes('\u0000')) outside.push(...outsideReferences(file, text, existsSync));
    }
    expect(outside).toEqual([]);
  });

  it('type-checks and tests every folder that holds code', () => {
    const tsconfig = readFileSync(join(root, 'tsconfig.json'), 'utf8');
    const included = JSON.parse(tsconfig.replace(/^\s*\/\/.*$/gm, '')).include as string[];
    const vitest = readFileSync(join(root, 'vitest.config.ts'), 'utf8');
    const unitFolders =
      /include: \[\s*'\{([^}]+)\}\/\*\*\/\*\.test\.ts',?\s*\]/.exec(vitest)?.[1]?.split(',') ?? [];
    const folders = new Set(sources.map(top).filter((t) => t !== '(root)'));
    expect([...folders].filter((f) => !included.includes(f))).toEqual([]);
    const testFolders = new Set(sources.filter((f) => f.endsWith('.test.ts')).map(top));
    expect([...testFolders].filter((f) => f !== 'test' && !unitFolders.includes(f))).toEqual([]);
  });

  it('catches what it looks for (the checks can fail)', () => {
    expect(
      cycles(
        graphOf([
          ['a', 'b'],
          ['b', 'c'],
          ['c', 'a'],
          ['c', 'd'],
        ]),
      ),
    ).toEqual([['a', 'b', 'c']]);
    expect(importsOf('operator/manager.ts')).toContain('operator/controller.ts');
    expect(
      upwardImports([
        { from: 'operator/manager.ts', to: 'controllers/node/reconcile.ts' },
        { from: 'model/fetch.ts', to: 'test/harness/cluster.ts' },
        { from: 'model/fetch.test.ts', to: 'hack/example-model/generate.ts' },
        { from: 'controllers/node/reconcile.ts', to: 'views/node.ts' },
      ]),
    ).toEqual([
      'operator/manager.ts → controllers/node/reconcile.ts',
      'model/fetch.ts → test/harness/cluster.ts',
    ]);
    const none = () => false;
    expect(outsideReferences('crds/a.ts', 'see ../notes/design/clinical.md', none)).toHaveLength(1);
    expect(outsideReferences('crds/a.ts', 'see ../../elsewhere/x.md', none)).toHaveLength(1);
    expect(outsideReferences('crds/a.ts', `read ${resolve(root, '..')}/notes/x`, none)).toHaveLength(1);
    expect(outsideReferences('controllers/node/a.ts', "from '../../operator/x.ts'", () => true)).toEqual([]);
  });
});
