import { capabilitiesOf, hasCapability } from '../core/index.js';
import type { AuditContext, AuditSection } from './sections.js';

export interface PlannedSection {
  section: AuditSection;
  threat: string;
  /** null: it runs; otherwise why not, and what to do about it. */
  skip: string | null;
  /** Predictions it may ask of a predict-only target; null: no limit (a white-box or local target without --budget). */
  queries: number | null;
  /** What it asked for, before the budget was split. */
  wanted?: { min: number; want: number };
}

export interface AuditPlan {
  sections: PlannedSection[];
  /** Threats asked for that no registered section covers. */
  uncovered: { threat: string; reason: string }[];
  budget: number | null;
  predictOnly: boolean;
}

export interface PlanOptions {
  threats: readonly string[];
  /** Total predictions the audit may ask of a predict-only target; null: no limit. */
  budget: number | null;
  /** Threats no section of this build covers, and what to run instead. */
  missing?: Record<string, string>;
}

/**
 * Decides, before anything runs, which sections run and with how many queries: a section
 * runs when its threat was asked for, the target offers what it needs and the data allow
 * it; every other section is listed with the reason. For a predict-only target the query
 * budget is split so that the sum of the allowances never exceeds it: each section first
 * gets its minimum (sections that no longer fit, from the last registered, are skipped),
 * then the rest in proportion to what each would use beyond it.
 */
export function planAudit(sections: readonly AuditSection[], ctx: AuditContext, opts: PlanOptions): AuditPlan {
  const predictOnly = !hasCapability(ctx.model, 'lossGradient');
  const target = `${ctx.model.info.name} (${ctx.model.info.engine})`;
  const planned: PlannedSection[] = sections.map((section) => {
    const threat = section.threat ?? section.id;
    const p: PlannedSection = { section, threat, skip: null, queries: null };
    const needs = section.needs ?? {};
    if (threat !== 'model' && !opts.threats.includes(threat)) {
      p.skip = `'${threat}' is not among the threats asked for (--threats ${opts.threats.join(',')})`;
    } else if (needs.capabilities?.some((c) => !hasCapability(ctx.model, c))) {
      const lacking = needs.capabilities.filter((c) => !hasCapability(ctx.model, c));
      // A section's own explanation (with the command to run instead) beats the generic one.
      const own = section.applies?.(ctx);
      p.skip = typeof own === 'string' ? own : `needs ${lacking.join(' and ')}, which ${target} does not offer (it offers ${capabilitiesOf(ctx.model).join(', ')})`;
    } else if (needs.trainingData && !ctx.train) {
      p.skip = "needs the model's training data: give it with --train-data FILE";
    } else if (needs.trainable && !hasCapability(ctx.model, 'fit')) {
      p.skip = `retrains the audited model, and ${target} cannot be trained from here (a TF.js model directory can)`;
    } else {
      const applies = section.applies ? section.applies(ctx) : true;
      if (applies !== true) p.skip = typeof applies === 'string' ? applies : 'does not apply to this target';
    }
    if (p.skip === null && predictOnly && needs.queries) p.wanted = needs.queries(ctx);
    return p;
  });

  if (predictOnly) allocate(planned, opts.budget);
  const present = new Set(planned.map((p) => p.threat));
  const uncovered = opts.threats
    .filter((t) => !present.has(t))
    .map((t) => ({ threat: t, reason: opts.missing?.[t] ?? `no section of this build covers '${t}'` }));
  return { sections: planned, uncovered, budget: opts.budget, predictOnly };
}

function allocate(planned: PlannedSection[], budget: number | null): void {
  const users = planned.filter((p) => p.skip === null && p.wanted && p.wanted.want > 0);
  if (budget === null) {
    for (const p of users) p.queries = p.wanted!.want;
    return;
  }
  // Sections that run without queries still must not ask any.
  for (const p of planned) if (p.skip === null && !users.includes(p)) p.queries = 0;
  const kept = [...users];
  while (kept.length > 0 && kept.reduce((s, p) => s + p.wanted!.min, 0) > budget) {
    const dropped = kept.pop()!;
    const others = kept.reduce((s, p) => s + p.wanted!.min, 0);
    dropped.skip =
      `needs at least ${dropped.wanted!.min} queries, and the budget of ${budget} leaves ${Math.max(0, budget - others)} after the sections before it; ` +
      `raise --budget or leave other threats out with --threats`;
  }
  const mins = kept.reduce((s, p) => s + p.wanted!.min, 0);
  const extra = kept.reduce((s, p) => s + (p.wanted!.want - p.wanted!.min), 0);
  const scale = extra > 0 ? Math.min(1, (budget - mins) / extra) : 0;
  for (const p of kept) p.queries = p.wanted!.min + Math.floor(scale * (p.wanted!.want - p.wanted!.min));
}
