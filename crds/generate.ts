// Writes the CRD YAML from the zod schemas: node crds/generate.ts (npm run generate:crds).
// The schemas are the single source of truth; a test fails when the checked-in YAML is stale.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { z } from 'zod';
import { group, type KindDefinition, kinds, version } from './kinds.ts';

type JsonSchema = Record<string, unknown>;

export const generatedDir = join(import.meta.dirname, 'generated');
export const crdFileName = (def: KindDefinition) => `${group}_${def.plural}.yaml`;

/** zod → OpenAPI v3.0 as the API server wants it: inline, with defaults, as users write objects. */
export function openApiSchema(schema: z.ZodType): JsonSchema {
  const json = z.toJSONSchema(schema, {
    target: 'openapi-3.0',
    io: 'input',
    reused: 'inline',
    unrepresentable: 'throw',
  }) as JsonSchema;
  delete json.$schema;
  assertStructural(json, '');
  return json;
}

/**
 * Refuses what a structural schema may not hold, so a schema change that the API server would reject
 * fails here with the path of the offending node.
 */
export function assertStructural(node: JsonSchema, path: string): void {
  for (const banned of [
    '$ref',
    'anyOf',
    'oneOf',
    'allOf',
    'not',
    'const',
    'propertyNames',
    'patternProperties',
  ]) {
    if (banned in node)
      throw new Error(`${path || '<root>'}: '${banned}' is not allowed in a structural schema`);
  }
  const preserve =
    node['x-kubernetes-preserve-unknown-fields'] === true || node['x-kubernetes-int-or-string'] === true;
  if (!preserve && typeof node.type !== 'string') {
    throw new Error(`${path || '<root>'}: every node of a structural schema needs a type`);
  }
  const properties = node.properties as Record<string, JsonSchema> | undefined;
  for (const [name, child] of Object.entries(properties ?? {})) assertStructural(child, `${path}.${name}`);
  if (node.items && typeof node.items === 'object') assertStructural(node.items as JsonSchema, `${path}[]`);
  if (node.additionalProperties && typeof node.additionalProperties === 'object') {
    assertStructural(node.additionalProperties as JsonSchema, `${path}{}`);
  }
}

export function buildCrd(def: KindDefinition): Record<string, unknown> {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${def.plural}.${group}`, labels: { 'app.kubernetes.io/part-of': 'aurora' } },
    spec: {
      group,
      scope: 'Namespaced',
      names: {
        kind: def.kind,
        listKind: `${def.kind}List`,
        plural: def.plural,
        singular: def.singular,
        shortNames: def.shortNames,
        categories: ['aurora'],
      },
      versions: [
        {
          name: version,
          served: true,
          storage: true,
          subresources: {
            status: {},
            ...(def.scale ? { scale: def.scale } : {}),
          },
          additionalPrinterColumns: def.printerColumns,
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description: def.description,
              required: ['spec'],
              ...(def.nameRule
                ? {
                    'x-kubernetes-validations': [{ rule: def.nameRule.rule, message: def.nameRule.message }],
                  }
                : {}),
              properties: {
                apiVersion: {
                  type: 'string',
                  description:
                    'The versioned schema of this representation of an object (aurora.health/v1alpha1).',
                },
                kind: { type: 'string', description: 'The REST resource this object represents.' },
                metadata: { type: 'object' },
                spec: openApiSchema(def.spec),
                status: openApiSchema(def.status),
              },
            },
          },
        },
      ],
    },
  };
}

export function renderCrd(def: KindDefinition): string {
  const header = '# Generated from the zod schemas in crds/ by crds/generate.ts. Do not edit by hand.\n';
  return header + stringify(buildCrd(def), { lineWidth: 0, aliasDuplicateObjects: false });
}

if (import.meta.main) {
  mkdirSync(generatedDir, { recursive: true });
  for (const def of kinds) {
    const file = join(generatedDir, crdFileName(def));
    writeFileSync(file, renderCrd(def));
    process.stdout.write(`wrote ${file}\n`);
  }
}
