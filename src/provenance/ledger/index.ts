import { openPostgresLedger, type PostgresLedgerOptions } from './postgres-store.js';
import { openSqliteLedger, type SqliteLedgerOptions } from './sqlite-store.js';
import type { LedgerStore } from './store.js';

export {
  canonicalJson,
  entryHash,
  entryHashInput,
  entryPayload,
  defaultActor,
  readPayloadArg,
  sha256Hex,
  GENESIS_HASH,
  LEDGER_FORMAT,
  LEDGER_FORMAT_VERSION,
  type Entry,
  type EntryDraft,
  type JsonValue,
} from './entry.js';
export { iterateEntries, type LedgerStore, type Checkpoint, type CheckpointDraft } from './store.js';
export { openSqliteLedger, SqliteLedgerStore, type SqliteLedgerOptions, type LedgerDurability } from './sqlite-store.js';
export { openPostgresLedger, PostgresLedgerStore, redactUrl, type PostgresLedgerOptions } from './postgres-store.js';
export { createCheckpoint, checkpointMessage, CHECKPOINT_TYPE, type Signer, type Verifier } from './checkpoint.js';
export { verifyLedger, type VerifyLedgerOptions, type VerifyLedgerResult, type LedgerProblem, type LedgerBadReason } from './verify.js';

export type OpenLedgerOptions = SqliteLedgerOptions & Omit<PostgresLedgerOptions, 'readonly' | 'create' | 'actor'>;

export function isPostgresUrl(spec: string): boolean {
  return /^postgres(ql)?:\/\//i.test(spec);
}

/** A `postgres://` / `postgresql://` URL opens the PostgreSQL store; anything else is a SQLite file path. */
export function openLedger(spec: string, opts: OpenLedgerOptions = {}): Promise<LedgerStore> {
  if (isPostgresUrl(spec)) return openPostgresLedger(spec, opts);
  const { create, readonly, actor, busyTimeoutMs, durability, autoCheckpoint } = opts;
  return openSqliteLedger(spec, { create, readonly, actor, busyTimeoutMs, durability, autoCheckpoint });
}
