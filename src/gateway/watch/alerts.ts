/** What the monitoring can do when a rule fires, in the policy file's words. */
export const RESPONSE_ACTIONS = ['alert', 'webhook', 'degrade', 'misinform', 'throttle', 'suspend'] as const;
export type ResponseAction = (typeof RESPONSE_ACTIONS)[number];

/** Responses that change what a key gets: never allowed for model-wide rules such as drift. */
export const KEY_ACTIONS: readonly ResponseAction[] = ['degrade', 'misinform', 'throttle', 'suspend'];

export interface AlertDraft {
  /** ISO time the rule fired. */
  at: string;
  /** The policy rule that fired: 'extraction', 'ood', 'drift', … */
  rule: string;
  /** The detector behind it: 'prada', 'similarity', 'volume', 'ood', 'drift'. */
  detector: string;
  /** Key id, or null for a model-wide alert (drift). */
  key: string | null;
  model: string | null;
  version: string | null;
  score: number;
  threshold: number;
  detail: string;
  /** The responses the policy asked for. */
  responses: ResponseAction[];
  /** Which server process raised it (host:pid). */
  replica: string;
}

/** An alert as listed by `GET /admin/alerts`, newest first. */
export interface Alert extends AlertDraft {
  id: number;
}

export interface AlertQuery {
  /** ISO time: only alerts raised at or after it. */
  since?: string;
  /** Most alerts returned. Default 100. */
  limit?: number;
}

export const DEFAULT_ALERT_LIMIT = 100;
export const MAX_ALERT_LIMIT = 1000;
