import { BulwarkError } from '../../core/index.js';
import { canonicalJson } from './entry.js';
import type { Checkpoint, LedgerStore } from './store.js';

/** Signs checkpoints. keys.ts key objects are adapted to this; tests use node:crypto directly. */
export interface Signer {
  alg: string;
  /** A short key fingerprint, stored beside the signature to say which key made it. */
  keyId?: string;
  sign(data: Uint8Array): Uint8Array;
}

export interface Verifier {
  alg?: string;
  verify(data: Uint8Array, signature: Uint8Array): boolean;
}

/** Domain tag, so a checkpoint signature can never pass for a manifest or DSSE signature by the same key. */
export const CHECKPOINT_TYPE = 'bulwark-ledger-checkpoint/v1';

/** The bytes a checkpoint signature covers: canonical JSON of {type, seq, hash, time}. */
export function checkpointMessage(cp: { seq: number; hash: string; time: string }): Uint8Array {
  return new TextEncoder().encode(canonicalJson({ type: CHECKPOINT_TYPE, seq: cp.seq, hash: cp.hash, time: cp.time }));
}

/**
 * Signs the current head (seq, hash, time) and stores the checkpoint in the ledger. Keep a
 * copy elsewhere too (pass it to verifyLedger as `trusted`): a checkpoint stored only in the
 * log can be deleted together with the entries it covers.
 */
export async function createCheckpoint(store: LedgerStore, signer: Signer): Promise<Checkpoint> {
  const head = await store.head();
  if (!head) throw new BulwarkError('E_USAGE', `ledger ${store.location} is empty; append an entry before checkpointing it`);
  const time = new Date().toISOString();
  const signature = Buffer.from(signer.sign(checkpointMessage({ seq: head.seq, hash: head.hash, time }))).toString('base64');
  return store.addCheckpoint({ seq: head.seq, hash: head.hash, time, alg: signer.alg, ...(signer.keyId ? { keyId: signer.keyId } : {}), signature });
}

/** Null when the signature holds, otherwise why not. */
export function checkpointSignatureProblem(cp: Checkpoint, verifier: Verifier): string | null {
  if (verifier.alg !== undefined && verifier.alg !== cp.alg) return `it is signed with ${cp.alg}, but the key given is ${verifier.alg}`;
  const sig = Buffer.from(cp.signature, 'base64');
  let ok = false;
  try {
    ok = verifier.verify(checkpointMessage(cp), new Uint8Array(sig.buffer, sig.byteOffset, sig.byteLength));
  } catch {
    ok = false;
  }
  return ok ? null : 'its signature does not verify with the key given';
}
