import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { DetectorVerdict } from '../../monitor/index.js';
import type { AlertEvent } from './responder.js';
import type { WebhookSender } from './webhook.js';

export interface WatchMetrics {
  alert(e: AlertEvent): void;
  error(rule: string, detector: string): void;
  batch(rows: number, seconds: number, ood?: { rows: number; outOfDistribution: number }): void;
  flaggedFrom(flagged: Map<string, Map<string, DetectorVerdict>>): void;
  dropped(rows: number): void;
}

/**
 * The monitoring's Prometheus metrics. Labels are rules, detectors, models and versions —
 * never a key: a key is an unbounded label and a secret's neighbour.
 */
type DriftShares = () => { model: string; version: string; share: number; windows: number; drifted: number }[];

export function watchMetrics(registry: Registry, parts: { webhook?: WebhookSender; drift: DriftShares }): WatchMetrics {
  const alerts = new Counter({ name: 'bulwark_monitor_alerts_total', help: 'Alerts raised, by rule and detector', labelNames: ['rule', 'detector'] as const, registers: [registry] });
  const errors = new Counter({ name: 'bulwark_monitor_errors_total', help: 'Batches a detector failed on, by rule and detector', labelNames: ['rule', 'detector'] as const, registers: [registry] });
  const rows = new Counter({ name: 'bulwark_monitor_rows_total', help: 'Rows seen by the detectors', registers: [registry] });
  const dropped = new Counter({ name: 'bulwark_monitor_dropped_rows_total', help: 'Rows not inspected because the detectors were too far behind', registers: [registry] });
  const oodRows = new Counter({ name: 'bulwark_monitor_ood_rows_total', help: 'Rows whose Mahalanobis score is over the out-of-distribution threshold', registers: [registry] });
  const seconds = new Histogram({
    name: 'bulwark_monitor_batch_seconds',
    help: 'Time the detectors took per batch (after the answers were sent)',
    buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
    registers: [registry],
  });
  let flaggedMaps: Map<string, Map<string, DetectorVerdict>> | undefined;
  new Gauge({
    name: 'bulwark_monitor_flagged_keys',
    help: 'Keys flagged, by rule and detector (seen by this process)',
    labelNames: ['rule', 'detector'] as const,
    registers: [registry],
    collect() {
      for (const [name, keys] of flaggedMaps ?? []) {
        const [rule, detector] = name.split('/');
        this.set({ rule, detector }, keys.size);
      }
    },
  });
  {
    const shares = parts.drift;
    new Gauge({
      name: 'bulwark_monitor_drift_share',
      help: 'Share of input features drifted in the latest window, by model and version',
      labelNames: ['model', 'version'] as const,
      registers: [registry],
      collect() {
        for (const s of shares()) this.set({ model: s.model, version: s.version }, s.share);
      },
    });
    new Gauge({
      name: 'bulwark_monitor_drift_windows',
      help: 'Windows of rows tested for drift, by model, version and result',
      labelNames: ['model', 'version', 'drifted'] as const,
      registers: [registry],
      collect() {
        for (const s of shares()) {
          this.set({ model: s.model, version: s.version, drifted: 'true' }, s.drifted);
          this.set({ model: s.model, version: s.version, drifted: 'false' }, s.windows - s.drifted);
        }
      },
    });
  }
  if (parts.webhook) {
    const w = parts.webhook;
    new Gauge({
      name: 'bulwark_monitor_webhook_deliveries',
      help: 'Alert webhook deliveries since the start, by outcome',
      labelNames: ['outcome'] as const,
      registers: [registry],
      collect() {
        for (const [outcome, n] of Object.entries(w.counts)) this.set({ outcome }, n);
        this.set({ outcome: 'pending' }, w.queued);
      },
    });
  }
  let oodSeen = 0;
  return {
    alert: (e) => alerts.inc({ rule: e.rule, detector: e.detector }),
    error: (rule, detector) => errors.inc({ rule, detector }),
    batch(n, s, ood) {
      rows.inc(n);
      seconds.observe(s);
      if (ood) {
        const t = ood.outOfDistribution;
        if (t > oodSeen) oodRows.inc(t - oodSeen);
        oodSeen = t;
      }
    },
    dropped: (n) => dropped.inc(n),
    flaggedFrom(f) {
      flaggedMaps = f;
    },
  };
}
