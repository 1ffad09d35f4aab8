import type { Capability, Dataset, Finding, Model, Progress } from '../core/index.js';
import type { LedgerStore } from '../provenance/index.js';

/** What every audit section gets: the target, its data, and the run's settings. */
export interface AuditContext {
  model: Model;
  /** Local files that make up the model (empty for a remote model). */
  modelFiles: string[];
  /** Data the model was trained on, where known. */
  train?: Dataset;
  /** Held-out data to measure on. */
  test: Dataset;
  seed: number;
  progress: Progress;
  /** Where the audit records what it examined; sections may append and verify. */
  ledger?: LedgerStore;
  /** --quick: fewer samples, epochs and attacks, same checks. */
  quick?: boolean;
  /**
   * Predictions this section may ask of a predict-only target, from the plan; undefined or
   * null: no limit. A section that asks for more fails rather than overrun a server's budget.
   */
  queries?: number | null;
  /**
   * The built-in target only: its adversarially trained twin (same MLP, fast adversarial
   * training at ε = 0.1), trained once per seed and cached. The caller disposes the model.
   */
  hardened?: () => Promise<{ model: Model; name: string }>;
}

/** What a section needs of the target before it can run; the plan checks it before anything runs. */
export interface SectionNeeds {
  /** Capabilities the target must offer, all of them. */
  capabilities?: Capability[];
  /** The training data (--train-data, or the built-in example's). */
  trainingData?: boolean;
  /** The audited model itself must train (retraining experiments). */
  trainable?: boolean;
  /**
   * Predictions it asks of a predict-only target: the least it can say something with, and
   * what a full run would use. The plan splits --budget between sections within these.
   */
  queries?(ctx: AuditContext): { min: number; want: number };
}

export interface SectionAbout {
  tested: string;
  how: string;
}

/**
 * The one registration point: each capability adds its own section to the report by
 * registering it here. Sections run in registration order; what a section needs is
 * declared in `needs` (checked by the plan) and, for what only the data can tell,
 * `applies` (a string says why it does not apply).
 */
export interface AuditSection {
  id: string;
  title: string;
  /** The threat it covers, as --threats names it; 'model' runs always. Default: the id. */
  threat?: string;
  /** What is tested and how, for the report's reader. */
  about?: SectionAbout;
  needs?: SectionNeeds;
  /** Seconds on the built-in example (full, quick), for the time-left estimate. */
  estimate?: { full: number; quick: number };
  applies?(ctx: AuditContext): boolean | string;
  run(ctx: AuditContext): Promise<Finding[]>;
}

const registry: AuditSection[] = [];

export function registerAuditSection(section: AuditSection): void {
  if (registry.some((s) => s.id === section.id)) throw new Error(`audit section '${section.id}' is registered twice`);
  registry.push(section);
}

export function auditSections(): readonly AuditSection[] {
  return registry;
}
