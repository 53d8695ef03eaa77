import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { assertStructural, crdFileName, generatedDir, openApiSchema, renderCrd } from './generate.ts';
import { kinds } from './kinds.ts';

type Node = {
  description?: string;
  properties?: Record<string, Node>;
  items?: Node;
  additionalProperties?: Node | boolean;
};

/** Paths of schema nodes below root that carry no description. */
function undescribed(node: Node, path: string): string[] {
  const missing: string[] = [];
  for (const [name, child] of Object.entries(node.properties ?? {})) {
    if (!child.description) missing.push(`${path}.${name}`);
    missing.push(...undescribed(child, `${path}.${name}`));
  }
  if (node.items) missing.push(...undescribed(node.items, `${path}[]`));
  return missing;
}

describe('generated CRDs', () => {
  it.each(kinds.map((k) => k.kind))(
    '%s: the checked-in YAML matches the zod schemas (run npm run generate:crds)',
    (kind) => {
      const def = kinds.find((k) => k.kind === kind);
      if (!def) throw new Error(kind);
      const checkedIn = readFileSync(join(generatedDir, crdFileName(def)), 'utf8');
      expect(checkedIn).toBe(renderCrd(def));
    },
  );

  it.each(kinds.map((k) => k.kind))(
    '%s: every spec and status field, however deep, has a description',
    (kind) => {
      const def = kinds.find((k) => k.kind === kind);
      if (!def) throw new Error(kind);
      expect(undescribed(openApiSchema(def.spec) as Node, 'spec')).toEqual([]);
      expect(undescribed(openApiSchema(def.status) as Node, 'status')).toEqual([]);
    },
  );

  it.each([
    [
      { type: 'object', properties: { a: { anyOf: [{ type: 'string' }, { type: 'number' }] } } },
      /\.a: 'anyOf' is not allowed/,
    ],
    [
      { type: 'object', properties: { a: { description: 'no type' } } },
      /\.a: every node of a structural schema needs a type/,
    ],
    [{ type: 'array', items: { $ref: '#/x' } }, /\[\]: '\$ref' is not allowed/],
  ])('refuses a schema the API server would not take: %j', (schema, message) => {
    expect(() => assertStructural(schema, '')).toThrow(message);
  });
});
