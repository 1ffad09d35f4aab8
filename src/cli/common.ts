import { Command, InvalidArgumentError, Option } from 'commander';
import { BulwarkError } from '../core/index.js';

export interface GlobalOptions {
  json?: boolean;
  seed: number;
}

/** Adds the options every command has: --json and --seed. */
export function withCommonOptions(cmd: Command): Command {
  return cmd
    .option('--json', 'machine-readable output on stdout (logs go to stderr)')
    .addOption(new Option('--seed <n>', 'seed for every random choice').default(42).argParser(parseNonNegativeInt));
}

export function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`'${value}' is not a positive integer.`);
  return n;
}

export function parseNonNegativeInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`'${value}' is not a non-negative integer.`);
  return n;
}

export function parsePositiveNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`'${value}' is not a positive number.`);
  return n;
}

export function parseFraction(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n >= 1) throw new InvalidArgumentError(`'${value}' is not a number in [0, 1).`);
  return n;
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(',').map((s) => s.trim()).filter(Boolean)];
}

/** Prints a result: JSON on stdout with --json, otherwise the human text. */
export function output(opts: { json?: boolean }, result: unknown, human: () => string): void {
  if (opts.json) process.stdout.write(JSON.stringify(result) + '\n');
  else process.stdout.write(human() + '\n');
}

export function requireOption<T>(value: T | undefined, flag: string, what: string): T {
  if (value === undefined || value === '') throw new BulwarkError('E_USAGE', `${flag} is required: ${what}`);
  return value;
}

export function pct(x: number): string {
  return `${(x * 100).toFixed(2)}%`;
}
