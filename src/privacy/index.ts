export { DEFAULT_RDP_ORDERS, computeRdp, rdpEpsilon, rdpToEpsilon, rdpOneStep, type MechanismStep } from './dp/rdp.js';
export { prvEpsilon, type PrvOptions, type PrvEpsilon } from './dp/prv.js';
export {
  ACCOUNTANTS,
  PrivacyAccountant,
  calibrateNoise,
  computeEpsilon,
  maxStepsWithin,
  type AccountantKind,
  type CalibrateOptions,
  type EpsilonOptions,
} from './dp/accountant.js';
export { seededNoise, secureNoise, type NoiseSource } from './dp/noise.js';
export { laplaceMechanism, gaussianMechanism, gaussianSigma, gaussianEpsilon, gaussianDelta, type Release, type LaplaceOptions, type GaussianOptions } from './dp/mechanisms.js';
export { trainDpSgd, perExampleGradientNorms, clippedGradientSums, planDpModel, type DpSgdOptions, type DpSgdResult, type DpEpochMetrics } from './dp/dpsgd.js';
export { membershipMetrics, rocCounts, clopperPearsonUpper, type MembershipMetrics, type MetricsOptions } from './attacks/roc.js';
export {
  lossThresholdAttack,
  labelOnlyAttack,
  logitConfidence,
  membershipSample,
  type MembershipAttackName,
  type MembershipData,
  type MembershipResult,
  type LabelOnlyOptions,
} from './attacks/membership.js';
export { liraAttack, liraScore, trainShadowSet, likelihoodRatios, type LiraOptions, type LiraResult, type ShadowSet } from './attacks/lira.js';
export { freshCopy, type ShadowArchitecture, type ShadowTraining } from './attacks/shadow.js';
export { invertModel, scoreInversion, classMeans, type InversionOptions, type InversionResult, type InversionScore } from './attacks/inversion.js';
