import { mergeRestriction, newApiKey, type ApiKeyRecord, type KeyRestriction, type NewKey, type Scope } from '../keys.js';
import { DEFAULT_ALERT_LIMIT, MAX_ALERT_LIMIT, type Alert, type AlertDraft, type AlertQuery } from '../watch/alerts.js';
import type { GatewayStore, LiveVersion } from './types.js';

/** One process, nothing on disk: for tests and throwaway servers. */
export class MemoryGatewayStore implements GatewayStore {
  readonly location = '(memory)';
  private readonly keys = new Map<string, ApiKeyRecord>();
  private readonly live = new Map<string, LiveVersion>();
  private readonly alerts: Alert[] = [];

  async createKey(opts: { name: string; scopes: readonly Scope[]; tier: string }): Promise<NewKey> {
    const k = newApiKey(opts);
    this.keys.set(k.record.id, { ...k.record });
    return k;
  }

  async listKeys(): Promise<ApiKeyRecord[]> {
    return [...this.keys.values()].map((r) => ({ ...r, scopes: [...r.scopes], restriction: r.restriction ? { ...r.restriction } : null }));
  }

  async getKey(id: string): Promise<ApiKeyRecord | null> {
    const r = this.keys.get(id);
    return r ? { ...r, scopes: [...r.scopes], restriction: r.restriction ? { ...r.restriction } : null } : null;
  }

  async revokeKey(id: string): Promise<ApiKeyRecord | null> {
    const r = this.keys.get(id);
    if (!r) return null;
    r.revokedAt ??= new Date().toISOString();
    return { ...r };
  }

  async restrictKey(id: string, patch: KeyRestriction): Promise<ApiKeyRecord | null> {
    const r = this.keys.get(id);
    if (!r) return null;
    r.restriction = mergeRestriction(r.restriction, patch);
    return this.getKey(id);
  }

  async restoreKey(id: string): Promise<ApiKeyRecord | null> {
    const r = this.keys.get(id);
    if (!r) return null;
    r.restriction = null;
    return this.getKey(id);
  }

  async addAlert(alert: AlertDraft): Promise<Alert> {
    const a = { ...alert, responses: [...alert.responses], id: this.alerts.length + 1 };
    this.alerts.push(a);
    return { ...a };
  }

  async listAlerts(query: AlertQuery = {}): Promise<Alert[]> {
    const limit = Math.min(MAX_ALERT_LIMIT, query.limit ?? DEFAULT_ALERT_LIMIT);
    const out: Alert[] = [];
    for (let i = this.alerts.length - 1; i >= 0 && out.length < limit; i--) {
      const a = this.alerts[i];
      if (query.since !== undefined && a.at < query.since) continue;
      out.push({ ...a, responses: [...a.responses] });
    }
    return out;
  }

  async getLive(model: string): Promise<LiveVersion | null> {
    const l = this.live.get(model);
    return l ? { ...l, history: [...l.history] } : null;
  }

  async setLive(model: string, live: LiveVersion): Promise<void> {
    this.live.set(model, { ...live, history: [...live.history] });
  }

  async close(): Promise<void> {}
}
