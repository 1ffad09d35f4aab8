import { Command, Option } from 'commander';
import { BulwarkError } from '../core/index.js';
import { DEFAULT_STORE, RESPONSE_KIND, SCOPES, defaultLedgerSpec, openGatewayStore, startGateway, type GatewayStore, type KeyRestriction, type Scope } from '../gateway/index.js';
import { openLedger, redactUrl, type JsonValue } from '../provenance/index.js';
import { collect, output, parseNonNegativeInt, withCommonOptions } from './common.js';

interface StoreFlags {
  store?: string;
  postgres?: string;
  pgSchema?: string;
  json?: boolean;
}

interface ServeFlags extends StoreFlags {
  model?: string[];
  name?: string;
  live?: string;
  policy?: string;
  port: number;
  host: string;
  redis?: string;
  redisPrefix?: string;
  ledger?: string;
  auditDurability?: 'process' | 'fsync';
  allowUnsigned?: boolean;
  pub?: string;
  sig?: string[];
  apiKey?: string;
  trustProxy?: boolean;
  log?: boolean;
  reference?: string;
  referenceLabel?: string;
}

function storeOptions(cmd: Command): Command {
  return cmd
    .option('--store <file>', 'SQLite file for API keys and live versions', DEFAULT_STORE)
    .option('--postgres <url>', 'PostgreSQL instead of --store (shared by every replica; also holds the audit log)')
    .option('--pg-schema <name>', 'schema for the PostgreSQL tables', 'public');
}

async function withStore<T>(flags: StoreFlags, f: (s: GatewayStore) => Promise<T>): Promise<T> {
  const store = await openGatewayStore({ store: flags.store, postgres: flags.postgres, schema: flags.pgSchema });
  try {
    return await f(store);
  } finally {
    await store.close();
  }
}

function restrictionText(r: KeyRestriction | null): string {
  if (!r) return '';
  const what = [r.suspended ? 'SUSPENDED' : '', r.labelOnly ? 'label-only' : '', r.misinform ? 'MISINFORMED' : '', r.throttle ? `throttled to ${r.throttle.requests}/${r.throttle.perSeconds}s` : ''].filter(Boolean).join(', ');
  return `\n    ${what} by ${r.by} since ${r.since}: ${r.reason}`;
}

function where(flags: StoreFlags): string {
  return flags.postgres ? redactUrl(flags.postgres) : (flags.store ?? DEFAULT_STORE);
}

/** `bulwark serve` and `bulwark keys create|list|revoke` (API keys, beside `keys generate` for signing keys). */
export function registerGatewayCommands(program: Command): void {
  storeOptions(
    withCommonOptions(
      program
        .command('serve')
        .description('serve a model behind API keys, rate limits, budgets, output policies and an audit log (Open Inference Protocol v2)')
        .option('--model <spec>', 'model directory, .onnx file or OIP URL; repeat for versions 1, 2, … (the last is live)', collect)
        .option('--name <name>', 'model name in the URL (default: from the model path)')
        .option('--live <version>', 'version to make live at start (default: the last)')
        .option('--policy <file>', 'policy file (YAML or JSON): tiers, output policies, limits, budgets, validation, monitoring')
        .option('--reference <file>', "training data the monitoring's drift and OOD detectors compare traffic with (.csv, .jsonl, .npy; default: the dataset the model card names, if built in)")
        .option('--reference-label <col>', 'label column of a CSV/JSONL --reference (index for .npy)')
        .addOption(new Option('--port <n>', 'port (0 picks a free one)').default(8080).argParser(parseNonNegativeInt))
        .option('--host <host>', 'address to listen on', '127.0.0.1')
        .option('--redis <url>', 'Redis for rate limits and budgets shared by every replica (default: in memory)')
        .option('--redis-prefix <prefix>', 'prefix of the Redis keys', 'bulwark')
        .option('--ledger <file|url>', 'audit log (default: the --postgres database, else STORE.audit.db)')
        .addOption(
          new Option('--audit-durability <mode>', "SQLite audit log: 'process' commits each entry before answering (survives kill -9, not power loss); 'fsync' also waits for the disk")
            .choices(['process', 'fsync'])
            .default('process'),
        )
        .option('--pub <file>', 'public key the models are signed with')
        .option('--sig <file>', 'signature of a --model (bulwark sign); one per --model, same order', collect)
        .option('--allow-unsigned', 'serve models without checking a signature (development only)')
        .option('--api-key <key>', 'API key for a remote (URL) model (default: $BULWARK_API_KEY)')
        .option('--trust-proxy', 'take client addresses from X-Forwarded-For (only behind your own proxy)')
        .option('--log', 'log every request to stderr (JSON lines)'),
    ),
  ).action(async (flags: ServeFlags) => {
    const gw = await startGateway({
      models: flags.model ?? [],
      ...(flags.name ? { name: flags.name } : {}),
      ...(flags.live ? { live: flags.live } : {}),
      ...(flags.sig ? { sigs: flags.sig } : {}),
      ...(flags.pub ? { pub: flags.pub } : {}),
      allowUnsigned: flags.allowUnsigned ?? false,
      ...((flags.apiKey ?? process.env.BULWARK_API_KEY) ? { modelApiKey: flags.apiKey ?? process.env.BULWARK_API_KEY } : {}),
      ...(flags.policy ? { policyFile: flags.policy } : {}),
      port: flags.port,
      host: flags.host,
      store: flags.store,
      ...(flags.postgres ? { postgres: flags.postgres } : {}),
      pgSchema: flags.pgSchema,
      ...(flags.ledger ? { ledger: flags.ledger } : {}),
      ...(flags.auditDurability ? { auditDurability: flags.auditDurability } : {}),
      ...(flags.redis ? { redis: flags.redis, redisPrefix: flags.redisPrefix } : {}),
      trustProxy: flags.trustProxy ?? false,
      logger: flags.log ?? false,
      ...(flags.reference ? { reference: flags.reference } : {}),
      ...(flags.referenceLabel ? { referenceLabel: flags.referenceLabel } : {}),
    });
    const names = gw.registry.names();
    const info = {
      url: gw.url,
      port: gw.port,
      models: names.map((n) => ({ name: n, live: gw.registry.live(n).version, versions: gw.registry.versions(n).map((v) => ({ version: v.version, source: v.source, admitted: v.admitted })) })),
      store: gw.store.location,
      ledger: gw.ledger.location,
      limits: flags.redis ? redactUrl(flags.redis) : 'memory',
      monitoring: gw.app.hasDecorator('watch') ? 'on' : 'off',
    };
    output(flags, info, () =>
      [`listening on ${gw.url}`, ...names.map((n) => `  ${gw.url}/v2/models/${n} (live version ${gw.registry.live(n).version})`), `  keys: ${info.store}`, `  audit log: ${info.ledger}`, `  limits: ${info.limits}`, `  monitoring: ${info.monitoring}`].join('\n'),
    );
    // Runs until a signal; requests in flight finish and the log is flushed before exit.
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        void gw.close().then(resolve, resolve);
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
  });

  const keys = program.commands.find((c) => c.name() === 'keys') ?? program.command('keys').description('signing keys and API keys');
  keys.description('signing keys (generate) and the gateway\'s API keys (create, list, revoke, restore)');

  storeOptions(
    withCommonOptions(
      keys
        .command('create')
        .description('create an API key for the gateway; the key is shown once and only its hash is stored')
        .option('--name <name>', 'who or what the key is for', 'unnamed')
        .option('--scopes <list>', `comma-separated: ${SCOPES.join(', ')}`, collect)
        .option('--tier <tier>', 'policy tier (names a tier of the policy file)', 'default'),
    ),
  ).action(async (flags: StoreFlags & { name: string; scopes?: string[]; tier: string }) => {
    const scopes = (flags.scopes ?? ['infer']) as Scope[];
    const created = await withStore(flags, (s) => s.createKey({ name: flags.name, scopes, tier: flags.tier }));
    const { hash: _hash, ...record } = created.record;
    output(flags, { key: created.key, ...record }, () =>
      [`${created.key}`, `  id ${record.id}, scopes ${record.scopes.join(',')}, tier ${record.tier}, in ${where(flags)}`, '  (shown once: only its hash is stored)'].join('\n'),
    );
  });

  storeOptions(withCommonOptions(keys.command('list').description('list API keys (never the keys themselves)'))).action(async (flags: StoreFlags) => {
    const list = (await withStore(flags, (s) => s.listKeys())).map(({ hash: _hash, ...r }) => r);
    output(flags, list, () =>
      list.length === 0
        ? `no API keys in ${where(flags)}`
        : list.map((k) => `${k.id}  ${k.revokedAt ? 'REVOKED' : 'active '}  ${k.scopes.join(',').padEnd(20)} tier ${k.tier.padEnd(10)} ${k.name}  (created ${k.createdAt})${restrictionText(k.restriction)}`).join('\n'),
    );
  });

  storeOptions(withCommonOptions(keys.command('revoke').description('revoke an API key: every server on this store refuses it from the next request').argument('<id>', 'key id (from keys list)'))).action(
    async (id: string, flags: StoreFlags) => {
      const r = await withStore(flags, (s) => s.revokeKey(id));
      if (!r) throw new BulwarkError('E_USAGE', `no API key with id '${id}' in ${where(flags)}; see 'bulwark keys list'`);
      output(flags, { id: r.id, revokedAt: r.revokedAt }, () => `revoked ${r.id} (${r.name}) at ${r.revokedAt}`);
    },
  );

  storeOptions(
    withCommonOptions(
      keys
        .command('restore')
        .description("lift what the gateway's monitoring did to an API key (label-only, throttle, suspension); logged in the audit log")
        .argument('<id>', 'key id (from keys list)')
        .option('--ledger <file|url>', 'audit log to record the restore in (default: the --postgres database, else STORE.audit.db)'),
    ),
  ).action(async (id: string, flags: StoreFlags & { ledger?: string }) => {
    const { before, after } = await withStore(flags, async (s) => {
      const b = await s.getKey(id);
      return { before: b, after: b ? await s.restoreKey(id) : null };
    });
    if (!before || !after) throw new BulwarkError('E_USAGE', `no API key with id '${id}' in ${where(flags)}; see 'bulwark keys list'`);
    const ledger = await openLedger(defaultLedgerSpec({ store: flags.store, ...(flags.postgres ? { postgres: flags.postgres } : {}), ...(flags.ledger ? { ledger: flags.ledger } : {}) }), {
      actor: 'bulwark-cli',
      ...(flags.pgSchema ? { schema: flags.pgSchema } : {}),
    });
    try {
      await ledger.append({ kind: RESPONSE_KIND, actor: 'cli', payload: { action: 'restore', at: new Date().toISOString(), key: id, previous: before.restriction as unknown as JsonValue } });
    } finally {
      await ledger.close();
    }
    output(flags, { id, restored: before.restriction !== null, previous: before.restriction }, () =>
      before.restriction ? `restored ${id} (${before.name}): ${restrictionText(before.restriction).trim()} lifted` : `${id} (${before.name}) had no restriction; nothing to lift`,
    );
  });
}
