import { Command, CommanderError } from 'commander';
import { VERSION, isBulwarkError } from '../core/index.js';
import { auditCommand } from './audit.js';
import { trainCommands } from './train.js';
import { ledgerCommands } from './ledger.js';
import { provenanceCommands } from './provenance.js';
import { attackGroup } from './attack.js';
import { registerEvasionCommands } from './evasion.js';
import { registerPrivacyCommands } from './privacy.js';
import { registerPoisoningCommands } from './poisoning.js';
import { registerGatewayCommands } from './gateway.js';
import { extractCommand } from './extract.js';

/** Exit codes: 0 ok, 1 findings over threshold or verification failed, 2 usage or input error, 3 internal error. */
export async function main(argv: string[]): Promise<number> {
  const program = new Command('bulwark')
    .description('Bulwark: attacks and defences for machine-learning models')
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  trainCommands(program);
  auditCommand(program);
  provenanceCommands(program);
  ledgerCommands(program);
  const attack = attackGroup(program);
  registerEvasionCommands(program, attack);
  registerPrivacyCommands(program, attack);
  registerPoisoningCommands(program, attack);
  extractCommand(attack);
  registerGatewayCommands(program);
  const all = (c: Command): Command[] => [c, ...c.commands.flatMap(all)];
  for (const cmd of all(program)) cmd.exitOverride();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version end through here with exit code 0.
      return e.exitCode === 0 ? 0 : 2;
    }
    if (isBulwarkError(e)) {
      process.stderr.write(`bulwark: error: ${e.message}\n`);
      return 2;
    }
    const err = e as Error;
    process.stderr.write(`bulwark: internal error: ${err?.message ?? String(e)}\n`);
    if (process.env.BULWARK_DEBUG) process.stderr.write(`${err?.stack ?? ''}\n`);
    else process.stderr.write('bulwark: this is a bug; run again with BULWARK_DEBUG=1 for details and report it\n');
    return 3;
  }
}
