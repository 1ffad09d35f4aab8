import { Command } from 'commander';
import { BulwarkError } from '../core/index.js';
import {
  createCheckpoint,
  loadPrivateKey,
  loadPublicKey,
  openLedger,
  publicKeyHint,
  readPayloadArg,
  signBytes,
  verifyBytes,
  verifyLedger,
  type LedgerStore,
} from '../provenance/index.js';
import { output, parsePositiveInt, requireOption, withCommonOptions } from './common.js';
import { terminalProgress } from './progress-bar.js';

const LEDGER_HELP = 'ledger: a SQLite file (created on first append) or a postgres:// URL';

export function ledgerCommands(program: Command): void {
  const ledger = program.command('ledger').description('a hash-chained, append-only event log with signed checkpoints');

  withCommonOptions(
    ledger
      .command('append')
      .description('append an event; durable when the command returns')
      .option('--ledger <file|url>', LEDGER_HELP)
      .option('--kind <kind>', "what happened, e.g. 'dataset.added'")
      .option('--payload <json|@file>', 'the event as JSON, or @FILE to read it from a file')
      .option('--actor <name>', 'who did it (default: user@host)'),
  ).action(async (flags: { ledger?: string; kind?: string; payload?: string; actor?: string; json?: boolean }) => {
    const spec = requireOption(flags.ledger, '--ledger', LEDGER_HELP);
    const kind = requireOption(flags.kind, '--kind', "the kind of event, e.g. 'model.trained'");
    const payload = await readPayloadArg(requireOption(flags.payload, '--payload', 'the event as JSON or @FILE'));
    await withLedger(spec, { create: true }, async (store) => {
      const entry = await store.append({ kind, payload, actor: flags.actor });
      output(flags, { seq: entry.seq, hash: entry.hash, time: entry.time, kind: entry.kind, actor: entry.actor }, () => `appended #${entry.seq} ${entry.kind} ${entry.hash}`);
    });
  });

  withCommonOptions(
    ledger
      .command('checkpoint')
      .description('sign the current head so that later truncation is detected')
      .option('--ledger <file|url>', LEDGER_HELP)
      .option('--key <file>', 'private key (from bulwark keys generate)'),
  ).action(async (flags: { ledger?: string; key?: string; json?: boolean }) => {
    const spec = requireOption(flags.ledger, '--ledger', LEDGER_HELP);
    const key = await loadPrivateKey(requireOption(flags.key, '--key', 'the private key that signs checkpoints'));
    await withLedger(spec, { readonly: false, create: false }, async (store) => {
      const signer = { alg: key.alg, keyId: publicKeyHint(key.publicKey), sign: (d: Uint8Array) => signBytes(key, d) };
      const cp = await createCheckpoint(store, signer);
      output(flags, cp, () => `checkpoint ${cp.n} signs #${cp.seq} ${cp.hash}`);
    });
  });

  withCommonOptions(
    ledger
      .command('verify')
      .description('check the whole chain and its checkpoints; exit 1 names the first bad entry')
      .option('--ledger <file|url>', LEDGER_HELP)
      .option('--pub <file>', 'public key that must have signed every checkpoint'),
  ).action(async (flags: { ledger?: string; pub?: string; json?: boolean }) => {
    const spec = requireOption(flags.ledger, '--ledger', LEDGER_HELP);
    const pub = flags.pub ? await loadPublicKey(flags.pub) : undefined;
    await withLedger(spec, { readonly: true }, async (store) => {
      const result = await verifyLedger(store, {
        verifier: pub ? { alg: pub.alg, verify: (d, s) => verifyBytes(pub, d, s) } : undefined,
        progress: terminalProgress(),
      });
      output(flags, result, () => {
        if (!result.valid && result.firstBad) return `INVALID at #${result.firstBad.seq} (${result.firstBad.reason}): ${result.firstBad.message}`;
        const lines = [`valid: ${result.entries} entries, ${result.checkpoints} checkpoint(s)${result.signaturesChecked ? ', signatures checked' : pub ? '' : ' (signatures not checked: give --pub)'}`];
        if (result.unanchored > 0) lines.push(`${result.unanchored} entr${result.unanchored === 1 ? 'y' : 'ies'} after the last checkpoint`);
        return lines.join('\n');
      });
      if (!result.valid) process.exitCode = 1;
    });
  });

  withCommonOptions(
    ledger
      .command('show')
      .description('print entries')
      .option('--ledger <file|url>', LEDGER_HELP)
      .option('--from <seq>', 'first entry', parsePositiveInt, 1)
      .option('--limit <n>', 'entries to print', parsePositiveInt, 50),
  ).action(async (flags: { ledger?: string; from: number; limit: number; json?: boolean }) => {
    const spec = requireOption(flags.ledger, '--ledger', LEDGER_HELP);
    await withLedger(spec, { readonly: true }, async (store) => {
      const entries = await store.read(flags.from, flags.limit);
      if (flags.json) {
        for (const e of entries) process.stdout.write(JSON.stringify({ ...e, payload: JSON.parse(e.payloadJson), payloadJson: undefined }) + '\n');
      } else {
        for (const e of entries) process.stdout.write(`#${e.seq} ${e.time} ${e.actor} ${e.kind} ${e.payloadJson}\n`);
      }
    });
  });
}

async function withLedger(spec: string, opts: { create?: boolean; readonly?: boolean }, f: (store: LedgerStore) => Promise<void>): Promise<void> {
  if (!spec.trim()) throw new BulwarkError('E_USAGE', `--ledger is empty; ${LEDGER_HELP}`);
  const store = await openLedger(spec, opts);
  try {
    await f(store);
  } finally {
    await store.close();
  }
}
