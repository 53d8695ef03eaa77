// The layout's promises, checked on every file git tracks: imports flow one way, no controller folder
// imports another, and nothing refers to a path outside the repository (a user's clone has nothing there).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..');
const tracked = execFileSync('git', ['ls-files'], { cwd: root, encoding: 'utf8' }).trim().split('\n');
const sources = tracked.filter((f) => f.endsWith('.ts'));

/** Lower layers never import higher ones; folders not named here (test, bench, hack) may use any. */
const layers: Record<string, number> = {
  operator: 0,
  crds: 1,
  model: 2,
  placement: 2,
  views: 2,
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

  it('keeps every controller folder apart from the others', () => {
    const crossing = edges.filter((e) => {
      const a = controllerFolder(e.from);
      const b = controllerFolder(e.to);
      return a !== undefined && b !== undefined && a !== b;
    });
    expect(crossing.map((e) => `${e.from} → ${e.to}`)).toEqual([]);
  });

  it('imports flow one way: workloads and cmd → controllers → shared libraries → crds → the runtime', () => {
    const upward = edges.filter((e) => {
      const from = layers[top(e.from)];
      const to = layers[top(e.to)];
      // Tests may use fixtures from anywhere (hack's example model, the local cluster).
      if (e.from.endsWith('.test.ts')) return to !== undefined && from !== undefined && to > from;
      return from !== undefined && (to === undefined || to > from);
    });
    expect(upward.map((e) => `${e.from} → ${e.to}`)).toEqual([]);
  });

  it('refers to no path outside the repository', () => {
    const outside: string[] = [];
    for (const file of tracked) {
      let text: string;
      try {
        text = readFileSync(join(root, file), 'utf8');
      } catch {
        continue;
      }
      if (text.includes('\u0000')) continue;
      for (const m of text.matchAll(/(?:\.\.\/)+[\w.-][\w./-]*/g)) {
        // Read from the file's folder, or, where nothing is there, from the top as prose often means it.
        const fromFile = resolve(root, dirname(file), m[0]);
        const target = existsSync(fromFile) ? fromFile : resolve(root, m[0]);
        if (!inRepo(fromFile) || !inRepo(target)) outside.push(`${file}: ${m[0]}`);
      }
    }
    expect(outside).toEqual([]);
  });

  it('finds a cycle and an upward import when there is one (the checks can fail)', () => {
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
  });
});
