/**
 * Every metric the Grafana dashboard and the alert rules use exists: Turnpike's own metrics are
 * read from the runtime's real registry (runtime/shared/metrics.ts, createMetrics), and the few
 * external ones are listed below with the exporter that provides them. PromQL is parsed loosely:
 * strings, label matchers, ranges and grouping clauses are removed, then every identifier that is
 * not a function, keyword or Grafana variable is a metric name.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import yaml from "js-yaml";
import { names } from "../../runtime/shared/contracts/index.js";
import { createMetrics } from "../../runtime/shared/metrics.js";
import { repoRoot } from "../harness/kube.js";

/** Metrics from other exporters, exact names, each with its source. */
const EXTERNAL_METRICS: Record<string, string> = {
  // RabbitMQ's rabbitmq_prometheus plugin, per-object metrics (labels vhost, queue).
  rabbitmq_queue_messages_ready: "rabbitmq_prometheus",
  rabbitmq_queue_messages_unacked: "rabbitmq_prometheus",
  rabbitmq_queue_messages: "rabbitmq_prometheus",
  rabbitmq_queue_consumers: "rabbitmq_prometheus",
  // kube-state-metrics.
  kube_deployment_spec_replicas: "kube-state-metrics",
  kube_deployment_status_replicas_available: "kube-state-metrics",
  kube_deployment_labels: "kube-state-metrics",
  // KEDA's operator.
  keda_scaler_metrics_value: "keda",
};
const EXTERNAL_PREFIXES = /^(rabbitmq|kube|keda)_/;

/** Labels Prometheus adds to every scraped series (target discovery and the runtime's default label). */
const TARGET_LABELS = new Set([
  "namespace",
  "pod",
  "service",
  "job",
  "instance",
  "container",
  "endpoint",
  "role",
]);

const FUNCTIONS_AND_KEYWORDS = new Set([
  "by",
  "without",
  "on",
  "ignoring",
  "group_left",
  "group_right",
  "and",
  "or",
  "unless",
  "offset",
  "bool",
  "le",
  "inf",
  "nan",
]);

/** Metric names of one PromQL expression (or a Grafana label_values() query). */
export function metricNames(expr: string): string[] {
  const labelValues = /^\s*label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(expr);
  if (labelValues) return [labelValues[1]!];
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""') // string literals
    .replace(/\{[^}]*\}/g, " ") // label matchers
    .replace(/\[[^\]]*\]/g, " ") // range and subquery selectors
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ") // grouping labels
    .replace(/\boffset\s+-?[0-9a-z]+/g, " ")
    .replace(/\$\{?\w+\}?/g, " "); // Grafana variables
  const names = new Set<string>();
  for (const m of stripped.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    if (m[2] || FUNCTIONS_AND_KEYWORDS.has(m[1]!)) continue;
    names.add(m[1]!);
  }
  return [...names];
}

/** `metric{label=...}` selectors of an expression, with their label names. */
function selectors(expr: string): { metric: string; labels: string[] }[] {
  return [...expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}/g)].map((m) => ({
    metric: m[1]!,
    labels: [...m[2]!.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)/g)].map((l) => l[1]!),
  }));
}

/** Every series name the runtime exports, with the labels of each (histograms as _bucket/_sum/_count). */
function exportedSeries(): Map<string, string[]> {
  const { registry } = createMetrics("test");
  const series = new Map<string, string[]>();
  // prom-client's metric objects carry their label names at run time, though its types omit them.
  const metrics = registry.getMetricsAsArray() as unknown as {
    name: string;
    type: string;
    labelNames?: string[];
  }[];
  for (const metric of metrics) {
    const { name } = metric;
    const labels = metric.labelNames ?? [];
    const type = String(metric.type);
    if (type === "histogram") {
      series.set(`${name}_bucket`, [...labels, "le"]);
      series.set(`${name}_sum`, labels);
      series.set(`${name}_count`, labels);
    } else if (type === "summary") {
      series.set(name, [...labels, "quantile"]);
      series.set(`${name}_sum`, labels);
      series.set(`${name}_count`, labels);
    } else {
      series.set(name, labels);
    }
  }
  return series;
}

interface Query {
  where: string;
  expr: string;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function dashboardQueries(dashboard: any): Query[] {
  const queries: Query[] = [];
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const visit = (panels: any[]) => {
    for (const panel of panels ?? []) {
      for (const target of panel.targets ?? []) {
        if (target.expr) queries.push({ where: `panel "${panel.title}" ${target.refId}`, expr: target.expr });
      }
      visit(panel.panels);
    }
  };
  visit(dashboard.panels);
  for (const variable of dashboard.templating?.list ?? []) {
    const query = typeof variable.query === "string" ? variable.query : variable.query?.query;
    if (variable.type === "query" && query) queries.push({ where: `variable ${variable.name}`, expr: query });
  }
  return queries;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function ruleQueries(rules: any): Query[] {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return rules.spec.groups.flatMap((group: any) =>
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    group.rules.map((rule: any) => ({ where: `rule ${rule.alert ?? rule.record}`, expr: rule.expr })),
  );
}

const dashboard = JSON.parse(
  readFileSync(join(repoRoot, "config/observability/grafana-dashboard.json"), "utf8"),
);
const rules = yaml.load(readFileSync(join(repoRoot, "config/observability/prometheus-rules.yaml"), "utf8"));

describe("the loose PromQL parser", () => {
  it("finds metric names and nothing else", () => {
    expect(
      metricNames(
        'histogram_quantile(0.99, sum by (le, target) (rate(turnpike_request_duration_seconds_bucket{namespace="$namespace"}[$__rate_interval])))',
      ),
    ).toEqual(["turnpike_request_duration_seconds_bucket"]);
    expect(
      metricNames(
        '(sum by (a) (x_total) - sum by (a) (y)) > 0 and on (namespace, deployment) z{l="v"} offset 1h > 4 * w',
      ).sort(),
    ).toEqual(["w", "x_total", "y", "z"]);
    expect(metricNames('label_values(ml_tokens_processed_total{namespace="$namespace"}, tenant)')).toEqual([
      "ml_tokens_processed_total",
    ]);
  });
});

describe.each([
  ["Grafana dashboard", () => dashboardQueries(dashboard)],
  ["PrometheusRule", () => ruleQueries(rules)],
])("%s", (_name, queries) => {
  const exported = exportedSeries();

  it("uses only metrics the runtime exports, or listed external ones", () => {
    const unknown: string[] = [];
    for (const { where, expr } of queries()) {
      for (const name of metricNames(expr)) {
        if (exported.has(name)) continue;
        if (EXTERNAL_METRICS[name] && EXTERNAL_PREFIXES.test(name)) continue;
        unknown.push(`${where}: ${name}`);
      }
    }
    expect(unknown).toEqual([]);
  });

  it("filters Turnpike's metrics only by labels they have", () => {
    const problems: string[] = [];
    for (const { where, expr } of queries()) {
      for (const { metric, labels } of selectors(expr)) {
        const known = exported.get(metric);
        if (!known) continue;
        for (const label of labels) {
          if (!known.includes(label) && !TARGET_LABELS.has(label))
            problems.push(`${where}: ${metric}{${label}}`);
        }
      }
    }
    expect(problems).toEqual([]);
  });
});

describe("coverage of the issue's list", () => {
  const used = (queries: Query[]) => new Set(queries.flatMap((q) => metricNames(q.expr)));

  it("the dashboard shows queue depth, latency, tokens, quota rejections, replicas and dead letters", () => {
    const names = used(dashboardQueries(dashboard));
    for (const name of [
      "rabbitmq_queue_messages_ready",
      "turnpike_request_duration_seconds_bucket",
      "ml_tokens_processed_total",
      "turnpike_quota_rejections_total",
      "kube_deployment_status_replicas_available",
      "turnpike_dead_lettered_total",
    ]) {
      expect(names, name).toContain(name);
    }
    const exprs = dashboardQueries(dashboard).map((q) => q.expr);
    expect(exprs.some((e) => e.includes("histogram_quantile(0.5,"))).toBe(true);
    expect(exprs.some((e) => e.includes("histogram_quantile(0.99,"))).toBe(true);
    expect(exprs.some((e) => /by \(tenant, model\)/.test(e))).toBe(true);
  });

  it("the alerts cover a growing queue, dead letters, quota rejection spikes and workers not ready", () => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const alerts = (rules as any).spec.groups.flatMap((g: any) => g.rules.map((r: any) => r.alert));
    expect(alerts).toEqual(
      expect.arrayContaining([
        "TurnpikeQueueGrowing",
        "TurnpikeDeadLetterQueueNotEmpty",
        "TurnpikeQuotaRejectionsSpiking",
        "TurnpikeWorkersNotReady",
      ]),
    );
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    for (const rule of (rules as any).spec.groups.flatMap((g: any) => g.rules)) {
      expect(rule.labels?.severity, rule.alert).toMatch(/^(info|warning|critical)$/);
      expect(rule.annotations?.summary, rule.alert).toBeTruthy();
      expect(rule.for, rule.alert).toMatch(/^\d+m$/);
    }
  });

  it("the results backlog alert and panel watch every queue the collector consumes, and no other", () => {
    const n = names("demo");
    const backlog = [
      ...ruleQueries(rules).filter((q) => q.where === "rule TurnpikeResultsBacklog"),
      ...dashboardQueries(dashboard).filter((q) =>
        /rabbitmq_queue_messages\{queue=~?"[^"]*result/.test(q.expr),
      ),
    ];
    expect(backlog).toHaveLength(2);
    for (const query of backlog) {
      // The queue matcher as Prometheus reads it: an anchored regex (=~) or an exact name (=).
      const [, op, value] = /queue(=~?)"([^"]*)"/.exec(query.expr)!;
      const pattern = value!.replaceAll("$namespace", "demo");
      const matches = (queue: string) =>
        op === "=~" ? new RegExp(`^(?:${pattern})$`).test(queue) : queue === pattern;
      const consumed = [n.resultsQueue, n.resultBatchQueue];
      expect(consumed.filter(matches), query.where).toEqual(consumed);
      expect(matches(n.deadLetterQueue), query.where).toBe(false);
    }
  });

  it("the dashboard is importable: unique panel ids, a datasource variable, a stable uid", () => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const panelIds = dashboard.panels.map((p: any) => p.id);
    expect(new Set(panelIds).size).toBe(panelIds.length);
    expect(dashboard.uid).toBe("turnpike-overview");
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    expect(dashboard.templating.list.map((v: any) => v.name)).toEqual(["datasource", "namespace", "tenant"]);
  });
});
