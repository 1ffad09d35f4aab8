import type { FastifyInstance } from 'fastify';
import { misinformRow, outputShaper, type OutputShaper } from '../../outputs/index.js';
import type { Samples } from '../../core/index.js';
import { GatewayError } from '../errors.js';
import type { GatewayPolicy } from '../policy-file.js';
import { shared } from './context.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The output policy of a tier (its noise streams live as long as the server). */
    outputPolicy(tier: string): OutputShaper;
  }
}

/** The probabilities with each row's top two classes swapped (a copy). */
function misinform(p: Samples): Samples {
  const out = new Float32Array(p.data);
  const k = p.shape[1];
  for (let i = 0; i < out.length; i += k) misinformRow(out.subarray(i, i + k));
  return { data: out, shape: p.shape };
}

export interface PolicyOptions extends Record<string, unknown> {
  policy: GatewayPolicy;
}

/**
 * Output policies per tier: the same wrappers an attack can be run against (src/outputs),
 * applied to each inference answer for the tier of the key that asked. A request without a
 * key (this plugin used alone) gets the 'default' tier.
 */
export const policyPlugin = shared('bulwark-policy', async (app: FastifyInstance, opts: PolicyOptions) => {
  const shapers = new Map<string, OutputShaper>();
  const forTier = (tier: string): OutputShaper => {
    let s = shapers.get(tier);
    if (!s) {
      const t = opts.policy.tiers[tier];
      if (!t) throw new GatewayError(403, 'forbidden', `the key's tier '${tier}' is not defined in the policy (${opts.policy.source})`);
      s = outputShaper(t.output);
      shapers.set(tier, s);
    }
    return s;
  };
  // A key degraded by the monitoring gets the top label of the model's own answer, whatever its tier.
  const labelOnly = outputShaper({ kind: 'label' });
  app.decorate('outputPolicy', forTier);
  app.addHook('preHandler', async (request) => {
    const s = request.bulwark;
    if (s.kind !== 'infer' && s.kind !== 'model') return;
    const tierShaper = forTier(s.key?.tier ?? 'default');
    const degraded = s.key?.restriction?.labelOnly === true;
    const shaper = degraded ? labelOnly : tierShaper;
    s.policy = degraded ? `${labelOnly.description} (degraded by monitoring: ${s.key?.restriction?.by})` : shaper.description;
    // A misinformed key is told nothing (s.policy stays its tier's); the audit log records it.
    s.misinformed = s.key?.restriction?.misinform === true;
    s.shapeOutput = s.misinformed ? (p) => shaper.apply(misinform(p)) : (p) => shaper.apply(p);
  });
});
