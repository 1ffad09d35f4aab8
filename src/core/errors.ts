/**
 * Every failure a user can cause carries a stable code so scripts can branch on it,
 * and a message that says what was wrong, where, and what to do about it.
 */
export type ErrorCode =
  | 'E_USAGE' // bad flag or option value
  | 'E_FILE_NOT_FOUND'
  | 'E_FILE_READ'
  | 'E_DATA_PARSE' // malformed file contents (row / column named in the message)
  | 'E_DATA_SHAPE' // shapes disagree (model vs data, ragged rows, …)
  | 'E_DATA_VALUE' // NaN, infinite, out-of-range or unencodable values
  | 'E_UNKNOWN_DATASET'
  | 'E_UNKNOWN_MODEL'
  | 'E_MODEL_FORMAT' // a model file that cannot be read or is corrupt
  | 'E_MODEL_CAPABILITY' // an algorithm asked a model for something it cannot do
  | 'E_REMOTE' // a remote model answered with an error or nonsense
  | 'E_TIMEOUT'
  | 'E_OUTPUT'; // the result could not be written

export class BulwarkError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BulwarkError';
    this.code = code;
  }
}

export function isBulwarkError(e: unknown): e is BulwarkError {
  return e instanceof BulwarkError;
}
