import { MemoryGatewayStore } from './memory.js';
import { PostgresGatewayStore } from './postgres.js';
import { SqliteGatewayStore } from './sqlite.js';
import type { GatewayStore } from './types.js';

export interface OpenStoreOptions {
  /** SQLite file; default bulwark-gateway.db. ':memory:' for a store that lives and dies with the process. */
  store?: string;
  /** PostgreSQL URL; wins over `store`. */
  postgres?: string;
  schema?: string;
}

/** The store the server and `bulwark keys` share: PostgreSQL with a URL, else a SQLite file. */
export async function openGatewayStore(opts: OpenStoreOptions): Promise<GatewayStore> {
  if (opts.postgres) return PostgresGatewayStore.open(opts.postgres, opts.schema ? { schema: opts.schema } : {});
  if (opts.store === ':memory:') return new MemoryGatewayStore();
  return SqliteGatewayStore.open(opts.store ?? 'bulwark-gateway.db');
}
