import { z } from 'zod';

/**
 * Building blocks shared by the four kinds. Every field carries a description (kubectl explain shows
 * it), and every list and string that a CEL rule walks has a bound, so the API server can price the rule.
 */

/** A CEL rule attached to a schema node (x-kubernetes-validations). */
export interface CelRule {
  rule: string;
  message: string;
  /** The field the error names, relative to the node (e.g. '.maxReplicas'). */
  fieldPath?: string;
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
}

export const cel = (...rules: CelRule[]) => ({ 'x-kubernetes-validations': rules });

export const dnsLabel = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a DNS-1123 label: lower case letters, digits and -');

export const dnsSubdomain = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, 'must be a DNS-1123 subdomain');

/** A Kubernetes resource quantity such as 512Mi, 2Gi or 500m. */
export const quantity = z
  .string()
  .max(32)
  .regex(/^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$/, 'must be a quantity such as 500m, 512Mi or 2Gi');

/** A quantity between bounds, checked at admission with the API server's own quantity arithmetic. */
export const boundedQuantity = (least: string, most: string, what: string) =>
  quantity.meta(
    cel({
      rule: `quantity(self).compareTo(quantity('${least}')) >= 0 && quantity(self).compareTo(quantity('${most}')) <= 0`,
      message: `${what} must be between ${least} and ${most}`,
    }),
  );

export const localObjectReference = z
  .object({ name: dnsSubdomain.describe('Name of the object, in the same namespace.') })
  .describe('A reference to an object in the same namespace.');

export const secretKeySelector = z
  .object({
    name: dnsSubdomain.describe('Name of the Secret, in the same namespace.'),
    key: z
      .string()
      .min(1)
      .max(253)
      .regex(/^[-._a-zA-Z0-9]+$/, 'must be a valid Secret key')
      .describe('Key within the Secret.'),
  })
  .describe('A key of a Secret in the same namespace.');

export const configMapKeySelector = z
  .object({
    name: dnsSubdomain.describe('Name of the ConfigMap, in the same namespace.'),
    key: z
      .string()
      .min(1)
      .max(253)
      .regex(/^[-._a-zA-Z0-9]+$/, 'must be a valid ConfigMap key')
      .describe('Key within the ConfigMap (binaryData or data).'),
  })
  .describe('A key of a ConfigMap in the same namespace.');

export const labelSelector = z
  .object({
    matchLabels: z
      .record(z.string(), z.string())
      .optional()
      .describe('Labels an object must carry, all of them.'),
    matchExpressions: z
      .array(
        z.object({
          key: z.string().min(1).max(317).describe('The label key.'),
          operator: z
            .enum(['In', 'NotIn', 'Exists', 'DoesNotExist'])
            .describe('How the key relates to the values.'),
          values: z.array(z.string().max(63)).max(64).optional().describe('Values for In and NotIn.'),
        }),
      )
      .max(16)
      .optional()
      .describe('Label requirements, all of which must hold.'),
  })
  .describe('A Kubernetes label selector.');

/** A label key: an optional DNS subdomain prefix and /, then a name of up to 63 characters. */
export const labelKeyPattern =
  '^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$';
/** A label value: empty, or up to 63 characters starting and ending with a letter or digit. */
export const labelValuePattern = '^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$';

/** Labels a node must carry (a node selector): keys and values as the API server allows them. */
export const nodeSelector = z
  .record(z.string().max(317), z.string().max(63))
  .describe('Node labels the pods require.')
  .meta({
    maxProperties: 32,
    ...cel(
      {
        rule: `self.all(k, k.matches('${labelKeyPattern}'))`,
        message:
          'every key must be a label key: an optional DNS-subdomain prefix and /, then up to 63 letters, digits, -, _ or .',
      },
      {
        rule: `self.all(k, self[k].matches('${labelValuePattern}'))`,
        message:
          'every value must be a label value: up to 63 letters, digits, -, _ or ., starting and ending with a letter or digit',
      },
    ),
  });

export const toleration = z
  .object({
    key: z
      .string()
      .max(317)
      .regex(new RegExp(`(${labelKeyPattern})|^$`), 'must be a label key')
      .optional()
      .describe('The taint key the toleration applies to; empty matches all keys (with operator Exists).'),
    operator: z.enum(['Exists', 'Equal']).optional().describe('Equal (the default) or Exists.'),
    value: z
      .string()
      .max(63)
      .regex(new RegExp(labelValuePattern), 'must be a label value')
      .optional()
      .describe('The taint value for Equal; empty with Exists.'),
    effect: z
      .enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute'])
      .optional()
      .describe('The taint effect to match; empty matches all effects.'),
    tolerationSeconds: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe('For NoExecute: how long the pod stays bound after the taint appears.'),
  })
  .describe('A toleration, as in a pod spec.')
  .meta(
    cel(
      {
        rule: "!has(self.operator) || self.operator != 'Exists' || !has(self.value) || self.value == ''",
        message: 'value must be empty when operator is Exists',
        fieldPath: '.value',
      },
      {
        rule: "(has(self.key) && self.key != '') || (has(self.operator) && self.operator == 'Exists')",
        message: 'an empty key matches every taint only with operator Exists',
        fieldPath: '.operator',
      },
      {
        rule: "!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
        message: 'tolerationSeconds goes only with effect NoExecute',
        fieldPath: '.tolerationSeconds',
      },
    ),
  );

/** metav1.Condition, as every kind reports it. */
export const condition = z
  .object({
    type: z.string().min(1).max(316).describe('Type of condition in CamelCase, e.g. Ready.'),
    status: z.enum(['True', 'False', 'Unknown']).describe('Status of the condition.'),
    reason: z
      .string()
      .min(1)
      .max(1024)
      .regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/, 'must be CamelCase')
      .describe('Machine-readable CamelCase reason for the last transition.'),
    message: z.string().max(32768).describe('Human-readable message about the transition.'),
    observedGeneration: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe('The .metadata.generation the condition was set from.'),
    lastTransitionTime: z.string().describe('When the status last changed.').meta({ format: 'date-time' }),
  })
  .describe('A condition of the object (metav1.Condition).');

export const conditions = z
  .array(condition)
  .max(16)
  .optional()
  .describe('The latest observations of the object, one per type.')
  .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] });

export const observedGeneration = z
  .number()
  .int()
  .min(0)
  .optional()
  .describe('The .metadata.generation the status was computed from.');

export const timestamp = z.string().meta({ format: 'date-time' });
