import type { Command } from 'commander';

/** The `bulwark attack …` group; each area adds its own verbs to it. */
export function attackGroup(program: Command): Command {
  return program.command('attack').description('run an attack against a model or a dataset, to measure a defence');
}
