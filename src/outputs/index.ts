export {
  applyOutputPolicy,
  checkOutputPolicy,
  describeOutputPolicy,
  cryptoNormal,
  normalSourceFor,
  roundRow,
  topKRow,
  labelRow,
  misinformRow,
  gaussianRow,
  reverseSigmoidRow,
  OUTPUT_POLICY_KINDS,
  type OutputPolicy,
  type OutputPolicyKind,
  type NormalSource,
} from './policies.js';
export { withOutputPolicy, outputShaper, type OutputPolicyOptions, type PolicyModel, type OutputShaper } from './wrap.js';
