import { Command, Option } from 'commander';
import path from 'node:path';
import {
  KEY_ALGORITHMS,
  checkManifest,
  createManifest,
  loadPrivateKey,
  loadPublicKey,
  readManifest,
  signPath,
  verifyPath,
  writeKeyPair,
  writeManifest,
  writeSignature,
  type KeyAlgorithm,
  type VerificationResult,
} from '../provenance/index.js';
import { collect, output, requireOption, withCommonOptions } from './common.js';
import { terminalProgress } from './progress-bar.js';

interface PathFlags {
  records?: boolean;
  allowSymlinks?: boolean;
  ignore?: string[];
  json?: boolean;
}

export function provenanceCommands(program: Command): void {
  const keys = program.command('keys').description('signing keys');
  withCommonOptions(
    keys
      .command('generate')
      .description('write a private key (NAME.key, mode 0600) and its public key (NAME.pub), PEM')
      .addOption(new Option('--alg <alg>', 'algorithm (ml-dsa-65 is post-quantum, FIPS 204)').choices([...KEY_ALGORITHMS]).default('ed25519'))
      .option('--out <name>', 'base name of the two key files'),
  ).action(async (flags: { alg: KeyAlgorithm; out?: string; json?: boolean }) => {
    const out = requireOption(flags.out, '--out', 'the base name for NAME.key and NAME.pub');
    const files = await writeKeyPair(flags.alg, out);
    output(flags, { alg: flags.alg, ...files }, () => `wrote ${files.privateFile} (keep it secret) and ${files.publicFile}`);
  });

  const manifest = program.command('manifest').description('fingerprints of files, directories and their records');
  withPathOptions(
    withCommonOptions(
      manifest
        .command('create')
        .description('SHA-256 and size of every file (an in-toto statement in the OpenSSF model-signing format)')
        .argument('<paths...>', 'files or directories')
        .option('--out <file>', 'where to write the manifest'),
    ),
  ).action(async (paths: string[], flags: PathFlags & { out?: string }) => {
    const out = requireOption(flags.out, '--out', 'the manifest file to write');
    const m = await createManifest(paths, { records: flags.records, allowSymlinks: flags.allowSymlinks, ignore: flags.ignore, progress: terminalProgress() });
    await writeManifest(m, out);
    const files = m.predicate.resources.length;
    output(flags, { out, subject: m.subject[0], files }, () => `wrote ${out}: ${files} file(s), subject sha256 ${m.subject[0].digest.sha256}`);
  });
  withCommonOptions(
    manifest
      .command('verify')
      .description('check files against a manifest (integrity only: a manifest is not a signature)')
      .argument('<paths...>', 'the files or directories the manifest was made of')
      .option('--manifest <file>', 'the manifest to check against')
      .option('--ignore <paths>', 'paths to leave out (comma-separated, repeatable)', collect),
  ).action(async (paths: string[], flags: { manifest?: string; ignore?: string[]; json?: boolean }) => {
    const m = await readManifest(requireOption(flags.manifest, '--manifest', 'the manifest file'));
    report(flags, await checkManifest(paths, m, { ignore: flags.ignore, progress: terminalProgress() }));
  });

  withPathOptions(
    withCommonOptions(
      program
        .command('sign')
        .description('sign a file or directory (Sigstore bundle with a DSSE envelope, OpenSSF model-signing format)')
        .argument('<path>', 'file or directory to sign')
        .option('--key <file>', 'private key (from bulwark keys generate)')
        .option('--out <file>', 'where to write the signature'),
    ),
  ).action(async (target: string, flags: PathFlags & { key?: string; out?: string }) => {
    const key = await loadPrivateKey(requireOption(flags.key, '--key', 'the private key to sign with'));
    const out = requireOption(flags.out, '--out', 'the signature file to write (e.g. model.sig)');
    const bundle = await signPath(target, key, {
      records: flags.records,
      allowSymlinks: flags.allowSymlinks,
      ignore: flags.ignore,
      signatureFile: out,
      progress: terminalProgress(),
    });
    await writeSignature(bundle, out);
    output(flags, { out, alg: key.alg, path: path.resolve(target) }, () => `signed ${target} with ${key.alg}: ${out}`);
  });

  withCommonOptions(
    program
      .command('verify')
      .description('verify a signed file or directory; exit 1 lists what changed')
      .argument('<path>', 'file or directory to verify')
      .option('--sig <file>', 'the signature (a Sigstore bundle, ours or from the OpenSSF model_signing tool)')
      .option('--pub <file>', 'the public key of the signer')
      .option('--ignore <paths>', 'extra paths to leave out (comma-separated, repeatable)', collect),
  ).action(async (target: string, flags: { sig?: string; pub?: string; ignore?: string[]; json?: boolean }) => {
    const sig = requireOption(flags.sig, '--sig', 'the signature file');
    const pub = await loadPublicKey(requireOption(flags.pub, '--pub', 'the public key of the signer'));
    report(flags, await verifyPath(target, sig, pub, { ignore: flags.ignore, progress: terminalProgress() }));
  });
}

function withPathOptions(cmd: Command): Command {
  return cmd
    .option('--records', 'also digest every row of CSV/TSV/JSONL files, so changes are named by row')
    .option('--allow-symlinks', 'follow symbolic links instead of refusing them')
    .option('--ignore <paths>', "paths to leave out (comma-separated, repeatable; '.git' and friends always are)", collect);
}

function report(flags: { json?: boolean }, result: VerificationResult): void {
  output(flags, result, () => {
    if (result.valid) return `valid${result.subject ? `: ${result.subject.name} sha256 ${result.subject.sha256}` : ''}`;
    const lines = [`INVALID: ${result.reason ?? 'files differ from what was signed'}`];
    for (const c of result.changes) {
      let line = `  ${c.kind.padEnd(8)} ${c.path}`;
      const r = c.records;
      if (r) {
        const parts: string[] = [];
        if (r.headerChanged) parts.push('header changed');
        if (r.changed.length) parts.push(`rows changed ${rows(r.changed)}`);
        if (r.removed.length) parts.push(`rows removed ${rows(r.removed)}`);
        if (r.added.length) parts.push(`rows added ${rows(r.added)} (numbered in the current file)`);
        if (parts.length) line += `: ${parts.join('; ')}`;
      }
      lines.push(line);
    }
    return lines.join('\n');
  });
  if (!result.valid) process.exitCode = 1;
}

function rows(list: number[]): string {
  return list.length > 20 ? `${list.slice(0, 20).join(', ')} … (${list.length} in all)` : list.join(', ');
}
