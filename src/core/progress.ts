/**
 * How long-running work reports how far it has got. Library code takes a Progress and
 * never writes to the terminal itself; the CLI supplies a bar, tests supply nothing.
 */
export interface Progress {
  /** A new phase of `total` steps. */
  start(label: string, total: number): void;
  /** `steps` more steps done; `status` is a short line such as "loss 0.231". */
  advance(steps?: number, status?: string): void;
  /** The current phase is over. */
  done(): void;
  /** A message that should reach the user (a warning), outside the bar. */
  log(message: string): void;
}

export const silentProgress: Progress = {
  start() {},
  advance() {},
  done() {},
  log() {},
};
