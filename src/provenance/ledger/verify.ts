import { silentProgress, type Progress } from '../../core/index.js';
import { entryHash, sha256Hex, GENESIS_HASH, type Entry } from './entry.js';
import { checkpointSignatureProblem, type Verifier } from './checkpoint.js';
import type { CheckpointDraft, LedgerStore } from './store.js';

export type LedgerBadReason = 'edited' | 'removed' | 'reordered' | 'truncated' | 'bad-signature';

export interface LedgerProblem {
  /** The first entry that is wrong (for 'truncated', the first entry that is missing). */
  seq: number;
  reason: LedgerBadReason;
  message: string;
}

export interface VerifyLedgerOptions {
  /** Checks every checkpoint's signature. Without it checkpoints still bound the chain, unauthenticated. */
  verifier?: Verifier;
  /** Checkpoints kept outside the log (they survive an attacker deleting the stored ones). */
  trusted?: readonly CheckpointDraft[];
  /** Entries read per query. Default 10,000. */
  chunk?: number;
  progress?: Progress;
}

export interface VerifyLedgerResult {
  valid: boolean;
  /** Entries checked and found good, from seq 1. */
  entries: number;
  /** The last good entry (the head, when valid). */
  head: { seq: number; hash: string } | null;
  /** Checkpoints considered (stored plus trusted). */
  checkpoints: number;
  signaturesChecked: boolean;
  /** Entries after the newest checkpoint: dropping these would go unnoticed until the next checkpoint. */
  unanchored: number;
  firstBad?: LedgerProblem;
}

interface Anchor extends CheckpointDraft {
  label: string;
}

const RENUMBER_WINDOW = 1000;

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/**
 * Explains an entry that does not continue the chain: its own hash fails (`selfOk` false) or
 * its link to the previous entry does. Lookups by hash only happen here, on the failure path.
 */
async function classify(store: LedgerStore, row: Entry, seq: number, prev: string, selfOk: boolean): Promise<LedgerProblem> {
  const linkOk = row.prevHash === prev;
  if (!selfOk && linkOk) {
    return { seq, reason: 'edited', message: `entry ${seq} was changed after it was written: its fields no longer hash to its recorded hash` };
  }
  // The entry names a predecessor that exists elsewhere in the log: it was moved.
  const before = row.prevHash === GENESIS_HASH ? null : await store.findByHash(row.prevHash);
  if (row.prevHash === GENESIS_HASH && seq !== 1) {
    return { seq, reason: 'reordered', message: `entry ${seq} is out of order: it was written as the first entry of the log` };
  }
  if (before && before.seq !== seq - 1) {
    return { seq, reason: 'reordered', message: `entry ${seq} is out of order: it was written to follow the entry now at seq ${before.seq}` };
  }
  if (!selfOk) {
    for (let k = 1; k <= RENUMBER_WINDOW; k++) {
      if (entryHash({ ...row, seq: seq + k }) === row.hash) {
        return { seq, reason: 'removed', message: `${plural(k, 'entry', 'entries')} before this one ${k === 1 ? 'was' : 'were'} removed and the rest renumbered: the entry now at seq ${seq} was written as seq ${seq + k}` };
      }
    }
    return { seq, reason: 'edited', message: `entry ${seq} was changed after it was written: neither its hash nor its link to entry ${seq - 1} holds` };
  }
  if (seq === 1) {
    return { seq, reason: 'edited', message: 'entry 1 was rewritten: it does not start from the genesis hash' };
  }
  return {
    seq: seq - 1,
    reason: 'edited',
    message: `entry ${seq - 1} was rewritten and re-hashed: entry ${seq} recorded a different hash for its predecessor (or entry ${seq} itself was forged)`,
  };
}

/**
 * Walks the whole chain in seq order, in chunks, and checks it against every checkpoint.
 * Stops at the first broken link; `firstBad` is the lowest-seq problem found.
 */
export async function verifyLedger(store: LedgerStore, opts: VerifyLedgerOptions = {}): Promise<VerifyLedgerResult> {
  const chunk = opts.chunk ?? 10_000;
  const progress = opts.progress ?? silentProgress;
  const problems: LedgerProblem[] = [];

  const stored = await store.checkpoints();
  const all: Anchor[] = [
    ...stored.map((c) => ({ ...c, label: `checkpoint ${c.n}` })),
    ...(opts.trusted ?? []).map((c, i) => ({ ...c, label: `trusted checkpoint ${i + 1}` })),
  ];
  const anchors = new Map<number, Anchor[]>();
  for (const cp of all) {
    if (opts.verifier) {
      const why = checkpointSignatureProblem({ ...cp, n: 0 }, opts.verifier);
      if (why) {
        problems.push({ seq: cp.seq, reason: 'bad-signature', message: `${cp.label} (seq ${cp.seq}, ${cp.time}) cannot be trusted: ${why}` });
        continue;
      }
    }
    const list = anchors.get(cp.seq);
    if (list) list.push(cp);
    else anchors.set(cp.seq, [cp]);
  }

  const headEntry = await store.head();
  progress.start('verifying ledger', headEntry?.seq ?? 0);
  let expected = 1;
  let prev = GENESIS_HASH;
  let lastAnchored = 0;
  let broken = false;
  walk: for (;;) {
    const rows = await store.read(expected, chunk);
    for (const row of rows) {
      const seq = expected;
      if (row.seq !== seq) {
        const missing = row.seq - seq;
        problems.push({ seq, reason: 'removed', message: `${plural(missing, 'entry', 'entries')} removed: the log jumps from seq ${seq - 1} to seq ${row.seq}` });
        broken = true;
        break walk;
      }
      if (typeof row.payloadJson !== 'string' || sha256Hex(row.payloadJson) !== row.payloadDigest) {
        problems.push({ seq, reason: 'edited', message: `entry ${seq} was changed after it was written: its payload no longer matches its payload digest` });
        broken = true;
        break walk;
      }
      const selfOk = entryHash(row) === row.hash;
      if (!selfOk || row.prevHash !== prev) {
        problems.push(await classify(store, row, seq, prev, selfOk));
        broken = true;
        break walk;
      }
      const here = anchors.get(seq);
      if (here) {
        const bad = here.find((cp) => cp.hash !== row.hash);
        if (bad) {
          const from = lastAnchored + 1;
          problems.push({
            seq,
            reason: 'edited',
            message: `entry ${seq} does not match ${bad.label} (signed ${bad.time}): the log was rewritten and re-hashed somewhere in seq ${from}..${seq}`,
          });
          broken = true;
          break walk;
        }
        lastAnchored = seq;
      }
      prev = row.hash;
      expected = seq + 1;
    }
    progress.advance(rows.length);
    if (rows.length < chunk) break;
  }
  progress.done();

  const last = expected - 1;
  if (!broken) {
    const beyond = all.filter((cp) => cp.seq > last && anchors.get(cp.seq)?.includes(cp));
    if (beyond.length > 0) {
      const far = beyond.reduce((a, b) => (b.seq > a.seq ? b : a));
      problems.push({
        seq: last + 1,
        reason: 'truncated',
        message: `log truncated: it ends at seq ${last}, but ${far.label} (signed ${far.time}) covers seq ${far.seq}; entries ${last + 1}..${far.seq} or more were removed`,
      });
    }
  }
  problems.sort((a, b) => a.seq - b.seq);
  const maxAnchor = Math.max(0, ...[...anchors.keys()].filter((s) => s <= last));
  return {
    valid: problems.length === 0,
    entries: last,
    head: last > 0 ? { seq: last, hash: prev } : null,
    checkpoints: all.length,
    signaturesChecked: opts.verifier !== undefined,
    unanchored: last - maxAnchor,
    ...(problems.length > 0 ? { firstBad: problems[0] } : {}),
  };
}
