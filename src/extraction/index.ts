export { extract, type ExtractionOptions, type ExtractionResult, type ExtractionPoint } from './extract.js';
export { EXTRACTION_STRATEGIES, type ExtractionStrategy } from './strategies.js';
export { detectAnswerKind, describeAnswers, refusalStatus, type AnswerKind, type AnswerShape } from './answers.js';
export { jacobianAugment, leastConfident, randomQueries, noisyCopies, valueRange } from './queries.js';
