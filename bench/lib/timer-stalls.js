// How often this machine leaves a waiting process unscheduled: a 1 ms timer in an otherwise
// idle process, for `seconds`; every gap over 3 ms is a stall no server code caused. On a
// shared virtual machine these stalls set the floor of any p99 measured across processes.
//
//   node bench/lib/timer-stalls.js SECONDS   → one JSON line: { seconds, stalls_over_3ms, stall_ms (largest first) }
import { performance } from 'node:perf_hooks';

const seconds = Number(process.argv[2] ?? 5);
const gaps = [];
let last = performance.now();
const timer = setInterval(() => {
  const now = performance.now();
  if (now - last > 3) gaps.push(Number((now - last).toFixed(1)));
  last = now;
}, 1);
setTimeout(() => {
  clearInterval(timer);
  gaps.sort((a, b) => b - a);
  process.stdout.write(`${JSON.stringify({ seconds, stalls_over_3ms: gaps.length, stall_ms: gaps.slice(0, 10) })}\n`);
}, seconds * 1000);
