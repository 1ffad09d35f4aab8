import { BulwarkError, hasCapability, isBulwarkError, requireCapability, takeLabels, type ClassGradient, type LossGradient, type Model, type Samples } from '../../core/index.js';

/**
 * What a gradient attack climbs. 'ce': the softmax cross-entropy at the true class (minus the
 * cross-entropy at the target, when targeted). 'margin': the difference of logits of Carlini &
 * Wagner, max_{j≠y} z_j − z_y (targeted: z_t − max_{j≠t} z_j). Cross-entropy weighs every
 * wrong class by its probability, so on a confident model it mostly pushes classes that are
 * far from winning; the margin pushes only the closest rival, and its gradient does not shrink
 * as the softmax saturates.
 */
export const ATTACK_LOSSES = ['ce', 'margin'] as const;
export type AttackLoss = (typeof ATTACK_LOSSES)[number];

export function checkLoss(name: string, loss: unknown): AttackLoss {
  const l = loss ?? 'ce';
  if (!ATTACK_LOSSES.includes(l as AttackLoss)) throw new BulwarkError('E_USAGE', `${name}: loss must be one of ${ATTACK_LOSSES.join(', ')}, not '${String(l)}'`);
  return l as AttackLoss;
}

/** The margin loss needs class gradients; say so, and what would work instead, at once. */
export function requireLossCapability(model: Model, loss: AttackLoss, algorithm: string): void {
  if (loss !== 'margin') return;
  try {
    requireCapability(model, 'classGradient', `${algorithm} with the margin loss`);
  } catch (e) {
    if (!isBulwarkError(e)) throw e;
    throw new BulwarkError('E_MODEL_CAPABILITY', `${e.message} The cross-entropy loss (loss: 'ce', --loss ce) needs only lossGradient.`);
  }
}

export function canUseMargin(model: Model): boolean {
  return hasCapability(model, 'classGradient');
}

/**
 * Per row, the class the margin pushes up and the class it pushes down: untargeted, the
 * strongest wrong class up and the true class down; targeted, the target up and its
 * strongest rival down.
 */
export function marginClasses(probs: Samples, y: Int32Array, targets: Int32Array | null): { up: Int32Array; down: Int32Array } {
  const m = y.length;
  const k = probs.shape[1];
  const up = new Int32Array(m);
  const down = new Int32Array(m);
  for (let i = 0; i < m; i++) {
    const keep = targets ? targets[i] : y[i];
    let rival = keep === 0 ? 1 : 0;
    for (let j = 0; j < k; j++) if (j !== keep && probs.data[i * k + j] > probs.data[i * k + rival]) rival = j;
    if (targets) [up[i], down[i]] = [keep, rival];
    else [up[i], down[i]] = [rival, keep];
  }
  return { up, down };
}

/**
 * Gradient of the margin z_up − z_down with respect to the input. The log-softmax of two
 * classes differs by exactly their logit difference (the normaliser cancels), so two class
 * gradients give it without access to the logits; one call on the batch stacked twice.
 */
export async function marginGradient(model: Model & ClassGradient, x: Samples, up: Int32Array, down: Int32Array): Promise<Samples> {
  const m = up.length;
  const size = x.data.length / Math.max(1, x.shape[0]);
  const both = new Float32Array(2 * x.data.length);
  both.set(x.data, 0);
  both.set(x.data, x.data.length);
  const classes = new Int32Array(2 * m);
  classes.set(up, 0);
  classes.set(down, m);
  const g = await model.classGradient({ data: both, shape: [2 * m, ...x.shape.slice(1)] }, classes);
  const out = new Float32Array(m * size);
  const half = m * size;
  for (let j = 0; j < half; j++) out[j] = g.data[j] - g.data[half + j];
  return { data: out, shape: [...x.shape] };
}

/**
 * The direction to climb for one batch (rows `rows` of the full labels and targets), for
 * either loss. The margin loss first asks for probabilities to pick the rival class.
 */
export async function ascentGradient(
  model: Model & LossGradient,
  loss: AttackLoss,
  xb: Samples,
  y: Int32Array,
  targets: Int32Array | null,
  rows: number[],
): Promise<Samples> {
  if (loss === 'margin') {
    const yb = takeLabels(y, rows);
    const tb = targets ? takeLabels(targets, rows) : null;
    const { up, down } = marginClasses(await model.predict(xb), yb, tb);
    return marginGradient(model as Model & ClassGradient, xb, up, down);
  }
  if (!targets) return model.lossGradient(xb, takeLabels(y, rows));
  const g = await model.lossGradient(xb, takeLabels(targets, rows));
  for (let j = 0; j < g.data.length; j++) g.data[j] = -g.data[j];
  return g;
}

/** The value climbed, per row, from probabilities (for choosing the best of several restarts). */
export function lossValues(loss: AttackLoss, probs: Samples, y: Int32Array, targets: Int32Array | null): Float64Array {
  const m = y.length;
  const k = probs.shape[1];
  const out = new Float64Array(m);
  const logp = (i: number, j: number) => Math.log(Math.max(probs.data[i * k + j], 1e-30));
  if (loss === 'margin') {
    const { up, down } = marginClasses(probs, y, targets);
    for (let i = 0; i < m; i++) out[i] = logp(i, up[i]) - logp(i, down[i]);
    return out;
  }
  for (let i = 0; i < m; i++) out[i] = targets ? logp(i, targets[i]) : -logp(i, y[i]);
  return out;
}
