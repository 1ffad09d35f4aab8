import { BulwarkError, type ModelInfo, type Predictor, type Samples } from '../core/index.js';
import { applyOutputPolicy, checkOutputPolicy, describeOutputPolicy, normalSourceFor, type NormalSource, type OutputPolicy } from './policies.js';

export interface OutputPolicyOptions {
  /** Standard normals for 'gaussian' steps; default: each step's own source (seeded Rng or crypto, per the policy). */
  noise?: NormalSource;
}

/** A model whose answers pass through output policies: what a client of a defended API sees. */
export interface PolicyModel extends Predictor {
  readonly base: Predictor;
  readonly policies: readonly OutputPolicy[];
}

/**
 * Wraps a model so that `predict` returns what the policies (applied in order) let through.
 * The wrapper offers `predict` only: handing out the inner model's gradients or activations
 * would bypass the very coarsening it applies, so an attack run against it measures the
 * defended, black-box system. The noise streams live with the wrapper, so repeated calls draw
 * fresh noise (seeded runs stay repeatable from the wrapper's creation).
 */
export function withOutputPolicy(model: Predictor, policy: OutputPolicy | readonly OutputPolicy[], opts: OutputPolicyOptions = {}): PolicyModel {
  const shaper = outputShaper(policy, opts);
  const info: ModelInfo = {
    ...model.info,
    name: `${model.info.name} [${shaper.description}]`,
    engine: `policy(${model.info.engine})`,
  };
  return {
    info,
    base: model,
    policies: shaper.policies,
    async predict(x: Samples): Promise<Samples> {
      return shaper.apply(await model.predict(x));
    },
  };
}

/** A chain of policies with its own noise streams, applied to probabilities a model already gave. */
export interface OutputShaper {
  readonly policies: readonly OutputPolicy[];
  /** "top-2 → round(2)" */
  readonly description: string;
  apply(probs: Samples): Samples;
}

/**
 * The policies of `withOutputPolicy` without the model: for a server that needs the model's
 * raw answer too (to monitor it) and shapes it afterwards. Same code, same results.
 */
export function outputShaper(policy: OutputPolicy | readonly OutputPolicy[], opts: OutputPolicyOptions = {}): OutputShaper {
  const policies = (Array.isArray(policy) ? [...policy] : [policy as OutputPolicy]).map(checkOutputPolicy);
  if (policies.length === 0) throw new BulwarkError('E_USAGE', 'output policy: give at least one policy (use { kind: "full" } for none)');
  const sources = policies.map((p) => (p.kind === 'gaussian' ? (opts.noise ?? normalSourceFor(p)) : undefined));
  return {
    policies,
    description: policies.map(describeOutputPolicy).join(' → '),
    apply(probs: Samples): Samples {
      let out = probs;
      for (let i = 0; i < policies.length; i++) out = applyOutputPolicy(out, policies[i], sources[i]);
      return out;
    },
  };
}
