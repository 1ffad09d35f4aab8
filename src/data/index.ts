export { loadDigits, loadDigitsSplit, digitsSourceFiles, DIGITS_TEST_COUNT } from './digits.js';
export { loadCsv } from './csv.js';
export { loadJsonl } from './jsonl.js';
export { readNpy, writeNpy, loadNpy, type NpyArray, type NpyData } from './npy.js';
export type { TabularOptions } from './tabular.js';
export { loadDatasetSpec, loadDatasetFile, BUILTIN_DATASETS, type DatasetSpecOptions } from './resolve.js';
