export {
  NORMS,
  DEFAULT_CLIP,
  perturbationNorms,
  canTakeGradients,
  type Norm,
  type ClipRange,
  type AttackOptions,
  type EvasionResult,
} from './attacks/common.js';
export { fgsm, pgd, type FgsmOptions, type PgdOptions } from './attacks/gradient.js';
export { ATTACK_LOSSES, canUseMargin, marginGradient, type AttackLoss } from './attacks/losses.js';
export { square, type SquareOptions } from './attacks/square.js';
export { hopSkipJump, type HsjOptions } from './attacks/hsj.js';
export {
  runEvasionAttack,
  summarizeEvasion,
  EVASION_ATTACKS,
  BLACK_BOX_ATTACKS,
  type EvasionAttack,
  type EvasionSummary,
  type AnyAttackOptions,
} from './evaluate.js';
export {
  adversarialTransform,
  adversarialTrain,
  gaussianNoiseTransform,
  ADVERSARIAL_TRAINING_ATTACKS,
  type AdversarialTrainingAttack,
  type AdversarialTrainingOptions,
  type AdversarialTrainResult,
} from './defences/adversarial-training.js';
export { fastAdversarialStep } from './defences/fast-adversarial.js';
export {
  FeatureSqueezingDetector,
  bitDepthSqueezer,
  medianSqueezer,
  defaultSqueezers,
  type Squeezer,
  type SqueezingDetection,
} from './defences/squeezing.js';
export {
  certify,
  smoothedPredict,
  smoothedModel,
  certifiedAccuracy,
  ABSTAIN,
  type SmoothingOptions,
  type CertifyResult,
} from './defences/smoothing.js';
export { ensembleModel, type EnsembleModel, type EnsembleOptions } from './defences/ensemble.js';
export { normCdf, normPpf, betaInc, betaPpf, binomCdf, binomTestHalf, clopperPearsonLower, clopperPearsonUpper } from './defences/stats.js';
