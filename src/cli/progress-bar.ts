import cliProgress from 'cli-progress';
import type { Progress } from '../core/index.js';

/**
 * A progress bar on stderr, shown only when stderr is a terminal so that logs and CI
 * output stay clean; warnings are printed either way.
 */
export function terminalProgress(enabled = Boolean(process.stderr.isTTY)): Progress {
  let bar: cliProgress.SingleBar | null = null;
  let total = 0;
  let value = 0;
  return {
    start(label, steps) {
      if (!enabled) return;
      bar?.stop();
      total = steps;
      value = 0;
      bar = new cliProgress.SingleBar(
        { stream: process.stderr, format: `${label.padEnd(28)} {bar} {percentage}% | {value}/{total} | {status}`, hideCursor: true, clearOnComplete: true },
        cliProgress.Presets.shades_classic,
      );
      bar.start(steps, 0, { status: '' });
    },
    advance(steps = 1, status = '') {
      if (!bar) return;
      value = Math.min(total, value + steps);
      bar.update(value, { status });
    },
    done() {
      bar?.stop();
      bar = null;
    },
    log(message) {
      if (bar) bar.stop();
      process.stderr.write(`bulwark: ${message}\n`);
    },
  };
}
