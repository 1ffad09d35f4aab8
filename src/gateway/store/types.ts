import type { ApiKeyRecord, KeyRestriction, NewKey, Scope } from '../keys.js';
import type { Alert, AlertDraft, AlertQuery } from '../watch/alerts.js';

export interface LiveVersion {
  version: string;
  /** Versions that were live before, oldest first: what a rollback returns to. */
  history: string[];
  changedAt: string;
}

/**
 * The gateway's shared state: API keys and the live version of each model. Every request reads
 * its key from here (no cache), so a revocation made through any replica, or by the CLI on the
 * same store, takes effect on the next request everywhere.
 */
export interface GatewayStore {
  /** File path or password-free URL, for messages. */
  readonly location: string;
  createKey(opts: { name: string; scopes: readonly Scope[]; tier: string }): Promise<NewKey>;
  listKeys(): Promise<ApiKeyRecord[]>;
  getKey(id: string): Promise<ApiKeyRecord | null>;
  /** Marks the key revoked (idempotent); null when no such key. */
  revokeKey(id: string): Promise<ApiKeyRecord | null>;
  /** Merges `patch` into the key's restriction (atomically, so responses from two replicas both hold); null when no such key. */
  restrictKey(id: string, patch: KeyRestriction): Promise<ApiKeyRecord | null>;
  /** Lifts every restriction; null when no such key. */
  restoreKey(id: string): Promise<ApiKeyRecord | null>;
  /** Keeps an alert for `GET /admin/alerts` (shared by every replica on this store). */
  addAlert(alert: AlertDraft): Promise<Alert>;
  /** Newest first. */
  listAlerts(query?: AlertQuery): Promise<Alert[]>;
  getLive(model: string): Promise<LiveVersion | null>;
  setLive(model: string, live: LiveVersion): Promise<void>;
  close(): Promise<void>;
}
