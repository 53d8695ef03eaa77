// The metric-name extractor the observability test relies on: pure, no server (it runs with the
// integration project only because it lives beside the harness it serves).
import { describe, expect, it } from 'vitest';
import { exposedSeries, metricNames, unexported, variableQueryExpr, vectorSelectors } from './promql.ts';

describe('metricNames', () => {
  it.each([
    ['a bare metric', 'up', ['up']],
    ['a range in a function', 'rate(aurora_healing_actions_total[5m])', ['aurora_healing_actions_total']],
    [
      'an aggregation grouped first, a histogram, Grafana variables in matchers and range',
      'histogram_quantile(0.99, sum by (controller, le) (rate(controller_runtime_reconcile_time_seconds_bucket{job=~"$job"}[$__rate_interval])))',
      ['controller_runtime_reconcile_time_seconds_bucket'],
    ],
    ['an aggregation grouped after', 'sum(workqueue_depth) without (instance, pod)', ['workqueue_depth']],
    [
      'vector matching with label lists',
      'a_total * on (instance) group_left (node, pod) b_info / ignoring(le) group_right c',
      ['a_total', 'b_info', 'c'],
    ],
    [
      'set operators, bool, offset and @',
      'a > bool 3 and b offset 5m unless c @ start() or d @ 1609746000',
      ['a', 'b', 'c', 'd'],
    ],
    [
      'strings, including $1 and parentheses, are no metrics',
      'label_replace(up, "dst", "$1", "src", "(.*)") + count_values(\'version\', build_info)',
      ['build_info', 'up'],
    ],
    ['numbers, hex, exponents, Inf and NaN', 'x > 1e-3 + 0x1f - Inf * NaN + .5 + vector(0)', ['x']],
    ['a selector by __name__', '{__name__="aurora_cache_objects", kind="Pod"}', ['aurora_cache_objects']],
    ['a selector without a name names no metric', 'count({job="aurora"})', []],
    ['comments', '# the sum of bar\nbaz # and not qux', ['baz']],
    ['a subquery', 'max_over_time(rate(x_total[1m])[30m:1m])', ['x_total']],
    ['keywords as label names in matchers', 'foo{on="x", by="y"}', ['foo']],
    [
      'the no-leader rule',
      `sum(leader_election_master_status and on (instance) aurora_cache_objects) < 1
         or absent(aurora_cache_objects)`,
      ['aurora_cache_objects', 'leader_election_master_status'],
    ],
  ])('%s', (_what, expr, expected) => {
    expect(metricNames(expr)).toEqual(expected);
  });

  it('gives each selector the label names its matchers use', () => {
    expect(
      vectorSelectors(
        'max by (namespace) (aurora_status_condition{kind="InferencePool", type="Degraded", namespace=~"$namespace"}) > on (namespace) x{a!="}",b!~"{"}',
      ),
    ).toEqual([
      { metric: 'aurora_status_condition', labels: ['kind', 'type', 'namespace'] },
      { metric: 'x', labels: ['a', 'b'] },
    ]);
  });

  it('refuses what it cannot read rather than guess', () => {
    expect(() => metricNames('foo{job="x}')).toThrow(/unterminated string|unclosed/);
    expect(() => metricNames('foo{job}')).toThrow(/matcher operator/);
  });
});

describe('variableQueryExpr', () => {
  it.each([
    ['label_values(aurora_cache_objects, job)', 'aurora_cache_objects'],
    ['label_values(aurora_status_condition{job=~"$job"}, namespace)', 'aurora_status_condition{job=~"$job"}'],
    ['label_values(namespace)', undefined],
    ['query_result(topk(5, x))', 'topk(5, x)'],
    ['metrics(aurora_.*)', undefined],
  ])('%s', (query, expected) => {
    expect(variableQueryExpr(query)).toEqual(expected);
  });
});

const exposition = `# HELP aurora_cache_objects Objects held in the operator cache per informer kind
# TYPE aurora_cache_objects gauge
aurora_cache_objects{kind="Pod"} 12
# TYPE controller_runtime_reconcile_time_seconds histogram
controller_runtime_reconcile_time_seconds_bucket{le="0.005",controller="carequeue"} 3
controller_runtime_reconcile_time_seconds_sum{controller="carequeue"} 0.01
controller_runtime_reconcile_time_seconds_count{controller="carequeue"} 3
aurora_status_condition{kind="CareQueue",namespace="er",name="q",type="Ready",status="False",reason="A \\"quoted\\", {braced} reason"} 1
process_cpu_seconds_total 1.5
# TYPE aurora_registered_without_series gauge
`;

describe('exposedSeries', () => {
  it('reads each sample line: names with their label names; HELP and TYPE alone are no series', () => {
    const series = exposedSeries(exposition);
    expect([...series.keys()].sort()).toEqual([
      'aurora_cache_objects',
      'aurora_status_condition',
      'controller_runtime_reconcile_time_seconds_bucket',
      'controller_runtime_reconcile_time_seconds_count',
      'controller_runtime_reconcile_time_seconds_sum',
      'process_cpu_seconds_total',
    ]);
    expect([...(series.get('aurora_status_condition') ?? [])]).toEqual([
      'kind',
      'namespace',
      'name',
      'type',
      'status',
      'reason',
    ]);
    expect(series.get('process_cpu_seconds_total')?.size).toBe(0);
  });
});

describe('unexported', () => {
  const exposed = exposedSeries(exposition);

  it('passes what the exposition offers, with the labels a scrape adds', () => {
    expect(
      unexported(
        [
          {
            where: 'latency',
            expr: 'histogram_quantile(0.5, sum by (le) (rate(controller_runtime_reconcile_time_seconds_bucket{job=~"$job", instance!="", controller="carequeue"}[5m])))',
          },
          { where: 'cache', expr: 'aurora_cache_objects{kind="Pod"}' },
        ],
        exposed,
      ),
    ).toEqual([]);
  });

  it('reports a made-up metric, a histogram named by its family, a metric registered without series, and a label no series has', () => {
    expect(
      unexported(
        [
          { where: 'panel 3', expr: 'rate(aurora_made_up_total[5m])' },
          { where: 'panel 4', expr: 'rate(controller_runtime_reconcile_time_seconds[5m])' },
          { where: 'panel 5', expr: 'aurora_registered_without_series' },
          { where: 'rule X', expr: 'aurora_cache_objects{pool="er"} and aurora_made_up_total' },
        ],
        exposed,
      ),
    ).toEqual([
      'panel 3: aurora_made_up_total is not exported',
      'panel 4: controller_runtime_reconcile_time_seconds is not exported',
      'panel 5: aurora_registered_without_series is not exported',
      'rule X: aurora_cache_objects has no label pool',
      'rule X: aurora_made_up_total is not exported',
    ]);
  });
});
