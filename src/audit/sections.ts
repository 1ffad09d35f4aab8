import type { Dataset, Finding, Model, Progress } from '../core/index.js';
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
}

/**
 * The one registration point: each capability adds its own section to the report by
 * registering it here. Sections run in registration order; one that does not apply to
 * the target (a white-box attack against a remote model) says so through `applies`.
 */
export interface AuditSection {
  id: string;
  title: string;
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
