// The metric names a PromQL expression reads, and the series an exposition offers: enough to check that
// dashboards and alerts name only what the operator exports. Not a PromQL parser: a tokenizer that knows
// which identifiers are not metrics (functions, aggregations, keywords, label lists, literals).

/** A vector selector: the metric it names and the label names its matchers use. */
export interface VectorSelector {
  metric: string;
  labels: string[];
}

const aggregations = new Set([
  'sum',
  'min',
  'max',
  'avg',
  'group',
  'stddev',
  'stdvar',
  'count',
  'count_values',
  'bottomk',
  'topk',
  'quantile',
  'limitk',
  'limit_ratio',
]);
/** Followed by a list of label names in parentheses, which are no metrics. */
const labelListKeywords = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
const otherKeywords = new Set(['and', 'or', 'unless', 'bool', 'offset', 'atan2']);
const identifier = /[a-zA-Z_:][a-zA-Z0-9_:]*/y;
const labelName = /[a-zA-Z_][a-zA-Z0-9_]*/y;

/** The index just past the string that opens at i (", ' with escapes, or ` raw). */
function skipString(text: string, i: number): number {
  const quote = text[i];
  let j = i + 1;
  while (j < text.length && text[j] !== quote) j += quote !== '`' && text[j] === '\\' ? 2 : 1;
  if (j >= text.length) throw new Error(`unterminated string at ${i} in: ${text}`);
  return j + 1;
}

/** The index just past the bracket that closes the one open at i, skipping strings inside. */
function skipGroup(text: string, i: number, open: string, close: string): number {
  let depth = 0;
  let j = i;
  while (j < text.length) {
    const c = text[j] as string;
    if (c === '"' || c === "'" || c === '`') {
      j = skipString(text, j);
      continue;
    }
    if (c === open) depth++;
    else if (c === close && --depth === 0) return j + 1;
    j++;
  }
  throw new Error(`unclosed ${open} at ${i} in: ${text}`);
}

/** The label matchers in braces opening at i: their label names, and the metric a __name__="..." names. */
function readMatchers(text: string, i: number): { end: number; labels: string[]; name?: string } {
  const end = skipGroup(text, i, '{', '}');
  const labels: string[] = [];
  let name: string | undefined;
  let j = i + 1;
  while (j < end - 1) {
    const c = text[j] as string;
    if (/[\s,]/.test(c)) {
      j++;
      continue;
    }
    labelName.lastIndex = j;
    const m = labelName.exec(text);
    if (!m) throw new Error(`expected a label name at ${j} in: ${text}`);
    j += m[0].length;
    while (/\s/.test(text[j] ?? '')) j++;
    const op = /^(=~|!~|!=|=)/.exec(text.slice(j))?.[0];
    if (!op) throw new Error(`expected a matcher operator at ${j} in: ${text}`);
    j += op.length;
    while (/\s/.test(text[j] ?? '')) j++;
    const valueEnd = skipString(text, j);
    if (m[0] === '__name__') {
      if (op === '=') name = JSON.parse(`"${text.slice(j + 1, valueEnd - 1)}"`) as string;
    } else labels.push(m[0]);
    j = valueEnd;
  }
  return { end, labels, ...(name ? { name } : {}) };
}

const nextSignificant = (text: string, i: number) => {
  let j = i;
  while (/\s/.test(text[j] ?? '')) j++;
  return j;
};

/**
 * Every vector selector of a PromQL expression, in order. Grafana's variables ($namespace, ${job},
 * [$__rate_interval]) may stand where PromQL has a value or a duration.
 */
export function vectorSelectors(expr: string): VectorSelector[] {
  const found: VectorSelector[] = [];
  let i = 0;
  while (i < expr.length) {
    const c = expr[i] as string;
    if (/\s/.test(c)) i++;
    else if (c === '#') i = expr.includes('\n', i) ? expr.indexOf('\n', i) : expr.length;
    else if (c === '"' || c === "'" || c === '`') i = skipString(expr, i);
    // Ranges, subqueries and their durations.
    else if (c === '[') i = skipGroup(expr, i, '[', ']');
    else if (c === '{') {
      // A selector by matchers alone: a metric only when __name__ names one.
      const m = readMatchers(expr, i);
      if (m.name) found.push({ metric: m.name, labels: m.labels });
      i = m.end;
    } else if (c === '$') {
      // A Grafana variable: ${name} or $name.
      if (expr[i + 1] === '{') i = skipGroup(expr, i + 1, '{', '}');
      else {
        identifier.lastIndex = i + 1;
        i += 1 + (identifier.exec(expr)?.[0].length ?? 0);
      }
    } else if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(expr[i + 1] ?? ''))) {
      // Numbers, hex, exponents and durations (5m, 1h30m).
      // (An exponent's sign ends the token; its digits are read as another number.)
      i += /^[0-9a-zA-Z_.]+/.exec(expr.slice(i))?.[0].length ?? 1;
    } else if (/[a-zA-Z_:]/.test(c)) {
      identifier.lastIndex = i;
      const word = (identifier.exec(expr) as RegExpExecArray)[0];
      i += word.length;
      const next = nextSignificant(expr, i);
      const lower = word.toLowerCase();
      if (labelListKeywords.has(word)) {
        if (expr[next] === '(') i = skipGroup(expr, next, '(', ')');
      } else if (otherKeywords.has(word) || lower === 'inf' || lower === 'nan') {
        // An operator or a literal.
      } else if (expr[next] === '(') {
        // A function or an aggregation: its arguments are read on.
      } else if (aggregations.has(word) && /^(by|without)\b/.test(expr.slice(next))) {
        // An aggregation with its grouping first: sum by (namespace) (...).
      } else if (expr[next] === '{') {
        const m = readMatchers(expr, next);
        found.push({ metric: word, labels: m.labels });
        i = m.end;
      } else found.push({ metric: word, labels: [] });
    } else i++;
  }
  return found;
}

/** The metric names a PromQL expression reads, sorted, each once. */
export function metricNames(expr: string): string[] {
  return [...new Set(vectorSelectors(expr).map((s) => s.metric))].sort();
}

/**
 * The expression a Grafana query variable runs: label_values(<expr>, <label>) reads <expr>,
 * query_result(<expr>) reads <expr>; label_values(<label>), label_names() and metrics() read no metric.
 */
export function variableQueryExpr(query: string): string | undefined {
  const q = query.trim();
  const labelValues = /^label_values\(\s*([\s\S]+),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)$/.exec(q);
  if (labelValues) return labelValues[1];
  const result = /^query_result\(([\s\S]+)\)$/.exec(q);
  if (result) return result[1];
  if (/^(label_values|label_names|metrics)\(/.test(q)) return undefined;
  return q;
}

/** The series of a Prometheus text exposition: each sample's metric name, with the label names it carries. */
export function exposedSeries(exposition: string): Map<string, Set<string>> {
  const series = new Map<string, Set<string>>();
  for (const line of exposition.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    identifier.lastIndex = 0;
    const name = identifier.exec(line)?.[0];
    if (!name) throw new Error(`not a sample line: ${line}`);
    const labels = series.get(name) ?? new Set<string>();
    if (line[name.length] === '{') for (const l of readMatchers(line, name.length).labels) labels.add(l);
    series.set(name, labels);
  }
  return series;
}

/** Labels a scrape adds to every series; the exposition cannot show them. */
export const targetLabels: ReadonlySet<string> = new Set(['job', 'instance']);

/**
 * What a query names that the exposition does not offer: a metric with no series, or a label matcher on
 * a label that no series of the metric carries. Each problem says where it was found.
 */
export function unexported(
  queries: ReadonlyArray<{ where: string; expr: string }>,
  exposed: ReadonlyMap<string, ReadonlySet<string>>,
): string[] {
  const problems: string[] = [];
  for (const { where, expr } of queries) {
    for (const s of vectorSelectors(expr)) {
      const labels = exposed.get(s.metric);
      if (!labels) {
        problems.push(`${where}: ${s.metric} is not exported`);
        continue;
      }
      for (const l of s.labels)
        if (!labels.has(l) && !targetLabels.has(l)) problems.push(`${where}: ${s.metric} has no label ${l}`);
    }
  }
  return [...new Set(problems)];
}
