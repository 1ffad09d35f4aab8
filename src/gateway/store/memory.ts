import { newApiKey, type ApiKeyRecord, type NewKey, type Scope } from '../keys.js';
import type { GatewayStore, LiveVersion } from './types.js';

/** One process, nothing on disk: for tests and throwaway servers. */
export class MemoryGatewayStore implements GatewayStore {
  readonly location = '(memory)';
  private readonly keys = new Map<string, ApiKeyRecord>();
  private readonly live = new Map<string, LiveVersion>();

  async createKey(opts: { name: string; scopes: readonly Scope[]; tier: string }): Promise<NewKey> {
    const k = newApiKey(opts);
    this.keys.set(k.record.id, { ...k.record });
    return k;
  }

  async listKeys(): Promise<ApiKeyRecord[]> {
    return [...this.keys.values()].map((r) => ({ ...r, scopes: [...r.scopes] }));
  }

  async getKey(id: string): Promise<ApiKeyRecord | null> {
    const r = this.keys.get(id);
    return r ? { ...r, scopes: [...r.scopes] } : null;
  }

  async revokeKey(id: string): Promise<ApiKeyRecord | null> {
    const r = this.keys.get(id);
    if (!r) return null;
    r.revokedAt ??= new Date().toISOString();
    return { ...r };
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
