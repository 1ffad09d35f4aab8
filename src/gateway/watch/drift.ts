import type { Samples } from '../../core/index.js';
import type { DriftMonitor, DriftWindowReport } from '../../monitor/index.js';
import type { DriftRule } from './policy.js';
import type { AlertEvent } from './responder.js';

type Monitor = typeof import('../../monitor/index.js');

interface VersionDrift {
  model: string;
  version: string;
  monitor: DriftMonitor;
  drifted: boolean;
  windows: number;
  driftedWindows: number;
}

/** Rows answered by one model version. */
export interface DriftRows {
  model: string;
  version: string;
  x: Samples;
  probabilities: Samples;
}

function concat(parts: Samples[]): Samples {
  if (parts.length === 1) return parts[0];
  const n = parts.reduce((a, p) => a + p.shape[0], 0);
  const data = new Float32Array(parts.reduce((a, p) => a + p.data.length, 0));
  let o = 0;
  for (const p of parts) {
    data.set(p.data, o);
    o += p.data.length;
  }
  return { data, shape: [n, ...parts[0].shape.slice(1)] };
}

/**
 * Drift of each model version's traffic against the reference rows, over windows of rows
 * (this process's traffic). An alert is raised when a window drifts after one that did not:
 * a drifted model is reported, never refused.
 */
export class DriftWatch {
  private readonly versions = new Map<string, VersionDrift>();
  /** Versions seen in traffic whose reference predictions are still to come (from the thread that holds the model). */
  readonly missing = new Map<string, { model: string; version: string }>();

  constructor(
    private readonly mon: Monitor,
    readonly reference: Samples,
    private readonly rule: DriftRule,
  ) {}

  /** A version's reference: the reference rows and the version's own predictions on them. */
  prepare(model: string, version: string, probabilities: Samples): void {
    const id = `${model}@${version}`;
    const reference = this.mon.driftReference(this.reference, probabilities);
    const monitor = new this.mon.DriftMonitor(reference, {
      windowSize: this.rule.window,
      ...(this.rule.pThreshold !== undefined ? { pThreshold: this.rule.pThreshold } : {}),
      ...(this.rule.psiThreshold !== undefined ? { psiThreshold: this.rule.psiThreshold } : {}),
      ...(this.rule.shareThreshold !== undefined ? { shareThreshold: this.rule.shareThreshold } : {}),
    });
    this.versions.set(id, { model, version, monitor, drifted: false, windows: 0, driftedWindows: 0 });
    this.missing.delete(id);
  }

  /** Feeds the rows; returns an alert per version whose traffic has just drifted. */
  observe(batch: readonly DriftRows[]): AlertEvent[] {
    const groups = new Map<string, { model: string; version: string; x: Samples[]; p: Samples[] }>();
    for (const r of batch) {
      const id = `${r.model}@${r.version}`;
      let g = groups.get(id);
      if (!g) groups.set(id, (g = { model: r.model, version: r.version, x: [], p: [] }));
      g.x.push(r.x);
      g.p.push(r.probabilities);
    }
    const events: AlertEvent[] = [];
    for (const [id, g] of groups) {
      const state = this.versions.get(id);
      if (!state) {
        // A version loaded after the start: watched from when its reference predictions arrive.
        this.missing.set(id, { model: g.model, version: g.version });
        continue;
      }
      for (const report of state.monitor.observe(concat(g.x), concat(g.p))) {
        state.windows++;
        if (report.drifted) state.driftedWindows++;
        if (report.drifted && !state.drifted) events.push(this.event(state, report));
        state.drifted = report.drifted;
      }
    }
    return events;
  }

  private event(s: VersionDrift, r: DriftWindowReport): AlertEvent {
    const top = r.features.slice(0, 3).map((f) => `#${f.index} (${f.test} ${f.statistic.toPrecision(3)})`);
    const parts = [`${(r.shareDrifted * 100).toFixed(1)}% of the input features drifted`];
    if (top.length > 0) parts.push(`most: ${top.join(', ')}`);
    if (r.prediction.drifted) parts.push(`the predicted classes drifted (${r.prediction.test} ${r.prediction.statistic.toPrecision(3)})`);
    if (r.confidence.drifted) parts.push(`mean confidence ${r.confidence.mean.toFixed(3)} against ${r.confidence.referenceMean.toFixed(3)} in training`);
    return {
      rule: 'drift',
      detector: 'drift',
      key: null,
      model: s.model,
      version: s.version,
      score: r.shareDrifted,
      threshold: this.rule.shareThreshold ?? 0.5,
      detail: `model ${s.model} version ${s.version}: window ${r.window} (${r.rows} rows) drifted from the training data: ${parts.join('; ')}`,
    };
  }

  status(): Record<string, unknown>[] {
    return [...this.versions.values()].map((s) => {
      const latest = s.monitor.latest();
      return {
        model: s.model,
        version: s.version,
        window: this.rule.window,
        windows: s.windows,
        driftedWindows: s.driftedWindows,
        drifted: s.drifted,
        latest: latest ? { ...latest, features: latest.features.slice(0, 10) } : null,
        history: s.monitor
          .history()
          .slice(-20)
          .map((h) => ({ window: h.window, rows: h.rows, drifted: h.drifted, shareDrifted: h.shareDrifted })),
      };
    });
  }

  /** Latest share of drifted features per version, for the metrics. */
  shares(): { model: string; version: string; share: number; windows: number; drifted: number }[] {
    return [...this.versions.values()].map((s) => ({ model: s.model, version: s.version, share: s.monitor.latest()?.shareDrifted ?? 0, windows: s.windows, drifted: s.driftedWindows }));
  }
}
