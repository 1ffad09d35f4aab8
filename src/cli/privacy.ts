import { Command, InvalidArgumentError, Option } from 'commander';
import type { Dataset, FitResult, Progress } from '../core/index.js';
import { TfjsModel } from '../engines/index.js';
import { ACCOUNTANTS, calibrateNoise, computeEpsilon, prvEpsilon, trainDpSgd, type AccountantKind, type DpSgdResult } from '../privacy/index.js';
import { output, requireOption, withCommonOptions } from './common.js';
import { registerPrivacyAttackCommands } from './privacy-attacks.js';

/**
 * `bulwark privacy epsilon|noise` (the accountant from the command line), `bulwark attack
 * membership|invert`, and the DP options of `bulwark train`.
 */

export function parseEpsilon(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`'${value}' is not a number.`);
  if (n <= 0) throw new InvalidArgumentError(`ε must be positive: ε = ${value} would promise that one person's data changes nothing at all, which no trained model can.`);
  return n;
}

export function parseDelta(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0 || n >= 1) throw new InvalidArgumentError(`δ must be in (0, 1), e.g. 1e-5; got '${value}'.`);
  return n;
}

export function parseSampleRate(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0 || n > 1) throw new InvalidArgumentError(`the sample rate is batch size / dataset size, in (0, 1]; got '${value}'.`);
  return n;
}

function parseNonNegative(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`'${value}' is not a non-negative number.`);
  return n;
}

function parseSteps(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`'${value}' is not a whole number of steps.`);
  return n;
}

interface AccountFlags {
  sampleRate?: number;
  noiseMultiplier?: number;
  epsilon?: number;
  steps?: number;
  delta: number;
  accountant: AccountantKind;
  epsError: number;
  json?: boolean;
}

function accountingOptions(cmd: Command): Command {
  return cmd
    .option('--sample-rate <q>', 'chance each example is in a batch (expected batch size / dataset size)', parseSampleRate)
    .option('--steps <t>', 'training steps (batches)', parseSteps)
    .option('--delta <d>', 'δ of the (ε, δ) guarantee; keep it below 1/dataset size', parseDelta, 1e-5)
    .addOption(new Option('--accountant <kind>', "'prv' (tight, Gopi et al.) or 'rdp' (Rényi DP, as Opacus's RDPAccountant)").choices([...ACCOUNTANTS]).default('prv'))
    .option('--eps-error <e>', 'PRV: allowed error in ε', Number, 0.01);
}

export function registerPrivacyCommands(program: Command, attack: Command): void {
  const privacy = program.command('privacy').description('differential privacy: what a DP-SGD run spends, or the noise a budget needs');

  withCommonOptions(
    accountingOptions(privacy.command('epsilon').description('ε spent by DP-SGD with Poisson sampling, after some steps')).option(
      '--noise-multiplier <s>',
      'noise standard deviation / clipping norm',
      parseNonNegative,
    ),
  ).action((flags: AccountFlags) => {
    const q = requireOption(flags.sampleRate, '--sample-rate', 'expected batch size / dataset size, e.g. 0.004');
    const sigma = requireOption(flags.noiseMultiplier, '--noise-multiplier', 'the noise standard deviation in units of the clipping norm, e.g. 1.1');
    const steps = requireOption(flags.steps, '--steps', 'the number of training steps');
    const result: Record<string, unknown> = { epsilon: 0, delta: flags.delta, accountant: flags.accountant, sampleRate: q, noiseMultiplier: sigma, steps };
    if (flags.accountant === 'prv' && sigma > 0 && steps > 0) {
      const r = prvEpsilon([{ sampleRate: q, noiseMultiplier: sigma, steps }], flags.delta, { epsError: flags.epsError });
      Object.assign(result, { epsilon: r.epsilon, epsilonLower: r.lower, epsilonEstimate: r.estimate, epsError: r.epsError });
    } else {
      result.epsilon = computeEpsilon({ sampleRate: q, noiseMultiplier: sigma, steps, delta: flags.delta, accountant: flags.accountant });
    }
    output(flags, result, () => {
      const eps = result.epsilon as number;
      const how = flags.accountant === 'prv' ? `PRV accountant, an upper bound within ${flags.epsError} of the exact value` : 'RDP accountant';
      return `ε = ${Number.isFinite(eps) ? eps.toFixed(4) : '∞ (no noise: no privacy)'} at δ = ${flags.delta} after ${steps} steps at sample rate ${q} and noise multiplier ${sigma} (${how})`;
    });
  });

  withCommonOptions(
    accountingOptions(privacy.command('noise').description('the smallest noise multiplier that keeps DP-SGD within a budget ε')).option(
      '--epsilon <e>',
      'the privacy budget',
      parseEpsilon,
    ),
  ).action((flags: AccountFlags) => {
    const q = requireOption(flags.sampleRate, '--sample-rate', 'expected batch size / dataset size, e.g. 0.004');
    const steps = requireOption(flags.steps, '--steps', 'the number of training steps');
    const epsilon = requireOption(flags.epsilon, '--epsilon', 'the privacy budget ε, e.g. 3');
    const noiseMultiplier = calibrateNoise({ targetEpsilon: epsilon, delta: flags.delta, sampleRate: q, steps, accountant: flags.accountant });
    const spent = noiseMultiplier === 0 ? 0 : computeEpsilon({ sampleRate: q, noiseMultiplier, steps, delta: flags.delta, accountant: flags.accountant });
    output(flags, { noiseMultiplier, epsilon: spent, targetEpsilon: epsilon, delta: flags.delta, accountant: flags.accountant, sampleRate: q, steps }, () =>
      `noise multiplier ${noiseMultiplier.toFixed(4)} keeps ${steps} steps at sample rate ${q} within ε = ${epsilon} (spends ${spent.toFixed(4)}) at δ = ${flags.delta} (${flags.accountant} accountant)`,
    );
  });

  registerPrivacyAttackCommands(attack);
}

/* ------------------------------------------------------------------ DP training (`bulwark train --dp-epsilon`) */

export interface DpTrainFlags {
  dpEpsilon?: number;
  dpDelta: number;
  maxGradNorm: number;
  dpNoiseMultiplier?: number;
  dpAccountant: AccountantKind;
  dpShuffledBatches?: boolean;
  dpSecureNoise?: boolean;
}

/** The DP options `bulwark train` gains. */
export function dpTrainOptions(cmd: Command): Command {
  return cmd
    .option('--dp-epsilon <e>', 'train with DP-SGD within this privacy budget ε (stops at the budget)', parseEpsilon)
    .option('--dp-delta <d>', 'DP-SGD: δ of the (ε, δ) guarantee', parseDelta, 1e-5)
    .option('--max-grad-norm <c>', 'DP-SGD: clip each example\'s gradient to this norm', (v) => {
      const n = Number(v);
      if (!(n > 0) || !Number.isFinite(n)) throw new InvalidArgumentError(`the clipping norm must be a positive number, got '${v}'.`);
      return n;
    }, 1)
    .option('--dp-noise-multiplier <s>', 'DP-SGD: noise multiplier σ (default: calibrated from --dp-epsilon)', (v) => {
      const n = Number(v);
      if (!(n > 0) || !Number.isFinite(n)) throw new InvalidArgumentError(`the noise multiplier must be a positive number, got '${v}'.`);
      return n;
    })
    .addOption(new Option('--dp-accountant <kind>', 'DP-SGD: privacy accountant').choices([...ACCOUNTANTS]).default('prv'))
    .option('--dp-shuffled-batches', 'DP-SGD: fixed-size shuffled batches instead of Poisson sampling (the accountant assumes Poisson sampling, so ε becomes approximate)')
    .option('--dp-secure-noise', "DP-SGD: draw the noise from the OS's cryptographic generator instead of the seed");
}

export function dpRequested(flags: DpTrainFlags): boolean {
  return flags.dpEpsilon !== undefined || flags.dpNoiseMultiplier !== undefined;
}

/** DP-SGD defaults for options the user did not set: larger batches and fewer epochs than plain training. */
const DP_DEFAULTS = { epochs: 20, batchSize: 512, learningRate: 3e-3 };

/**
 * Trains `model` with DP-SGD for `bulwark train`: options the user left at their
 * (non-private) defaults take DP-SGD's. Returns the fit summary train prints and the DP
 * figures it adds to its output and the model card.
 */
export async function dpFit(
  model: TfjsModel,
  train: Dataset,
  flags: DpTrainFlags & { epochs?: number; batchSize: number; learningRate: number; seed: number },
  cmd: Command,
  progress: Progress,
): Promise<{ fit: FitResult; privacy: Record<string, unknown>; result: DpSgdResult }> {
  const explicit = (name: string) => cmd.getOptionValueSource(name) === 'cli';
  if (explicit('validationSplit') || explicit('patience')) progress.log('warning: --validation-split and --patience do not apply to DP-SGD training; it runs until its budget is spent');
  const r = await trainDpSgd(model, train, {
    targetEpsilon: flags.dpEpsilon,
    noiseMultiplier: flags.dpNoiseMultiplier,
    delta: flags.dpDelta,
    maxGradNorm: flags.maxGradNorm,
    epochs: flags.epochs ?? DP_DEFAULTS.epochs,
    batchSize: explicit('batchSize') ? flags.batchSize : DP_DEFAULTS.batchSize,
    learningRate: explicit('learningRate') ? flags.learningRate : DP_DEFAULTS.learningRate,
    sampling: flags.dpShuffledBatches ? 'shuffle' : 'poisson',
    accountant: flags.dpAccountant,
    secureNoise: flags.dpSecureNoise,
    seed: flags.seed,
    progress,
  });
  const fit: FitResult = {
    epochs: r.epochs.map((e) => ({ epoch: e.epoch, loss: e.loss, accuracy: e.accuracy, seconds: e.seconds })),
    seconds: r.seconds,
    stoppedEarly: r.stoppedAtBudget,
  };
  const privacy = {
    epsilon: r.epsilon,
    delta: r.delta,
    noiseMultiplier: r.noiseMultiplier,
    maxGradNorm: r.maxGradNorm,
    sampleRate: r.sampleRate,
    steps: r.steps,
    accountant: r.accountant,
    sampling: r.sampling,
    noise: r.noise,
    ...(r.warnings.length ? { warnings: r.warnings } : {}),
  };
  return { fit, privacy, result: r };
}

