import type { Progress } from '../core/index.js';

export interface Estimated {
  id: string;
  title: string;
  /** Seconds it is expected to take. */
  seconds: number;
}

/**
 * Progress for a run of sections: each phase a section starts is labelled with the
 * section's place in the run and an estimate of the time left, and each section's start is
 * logged (a CI log shows it even without a bar). The estimate is the sections' own
 * estimates, scaled by how the finished ones compared with theirs on this machine.
 */
export class RunProgress {
  private readonly t0 = performance.now();
  private current = -1;
  private sectionStart = 0;
  private actual = 0;
  private expected = 0;

  constructor(
    private readonly base: Progress,
    private readonly plan: readonly Estimated[],
  ) {}

  /** Seconds left: what remains of the current section and all later ones. */
  secondsLeft(): number {
    const ratio = this.expected > 0 ? Math.min(8, Math.max(0.25, this.actual / this.expected)) : 1;
    let left = 0;
    for (let i = Math.max(0, this.current); i < this.plan.length; i++) left += this.plan[i].seconds * ratio;
    if (this.current >= 0 && this.current < this.plan.length) left -= Math.min(this.plan[this.current].seconds * ratio, (performance.now() - this.sectionStart) / 1000);
    return Math.max(0, left);
  }

  begin(index: number): Progress {
    this.current = index;
    this.sectionStart = performance.now();
    const s = this.plan[index];
    this.base.log(`[${index + 1}/${this.plan.length}] ${s.title}: about ${duration(this.secondsLeft())} left`);
    const prefix = () => `[${index + 1}/${this.plan.length}] ${s.id}, ~${duration(this.secondsLeft())} left:`;
    return {
      start: (label, total) => this.base.start(`${prefix()} ${label.replace(new RegExp(`^${s.id}: `), '')}`, total),
      advance: (steps, status) => this.base.advance(steps, status),
      done: () => this.base.done(),
      log: (m) => this.base.log(m),
    };
  }

  end(index: number): void {
    this.actual += (performance.now() - this.sectionStart) / 1000;
    this.expected += this.plan[index].seconds;
    this.current = index + 1;
    this.sectionStart = performance.now();
  }

  elapsed(): number {
    return (performance.now() - this.t0) / 1000;
  }
}

export function duration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}
