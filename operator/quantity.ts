// Kubernetes resource quantities. The API server stores them in canonical form (3000 comes back as 3k,
// 1536Mi stays 1536Mi), so quantities read from objects are parsed, never compared as strings.

const binary: Record<string, number> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};
const decimal: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
};

/** The value of a quantity such as 500m, 3k, 1.5Gi or 1e3; NaN when it is not one. */
export function quantityValue(quantity: string | number | undefined): number {
  if (typeof quantity === 'number') return quantity;
  const match = /^([+-]?[0-9]+(?:\.[0-9]*)?|[+-]?\.[0-9]+)(?:([eE][+-]?[0-9]+)|([a-zA-Z]*))$/.exec(
    quantity?.trim() ?? '',
  );
  if (!match) return Number.NaN;
  const number = Number(match[1]);
  if (match[2]) return number * 10 ** Number(match[2].slice(1));
  const suffix = match[3] ?? '';
  const factor = binary[suffix] ?? decimal[suffix];
  return factor === undefined ? Number.NaN : number * factor;
}

/** A memory quantity (512Mi, 2Gi, 3G) in whole MiB, rounded up. */
export function quantityToMiB(quantity: string): number {
  const bytes = quantityValue(quantity);
  if (!Number.isFinite(bytes)) throw new Error(`${quantity} is not a quantity`);
  return Math.ceil(bytes / 2 ** 20);
}
