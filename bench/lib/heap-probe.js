// Loaded into a server under test with `node --expose-gc --import bench/lib/heap-probe.js …`
// and an IPC channel: on 'heap' it runs full garbage collections and answers with
// process.memoryUsage(). Memory that survives a full GC is what a leak would grow; RSS alone
// swings by ±100 MB as large request bodies come and go, so it cannot show a leak of a few MB.
if (typeof process.send === 'function' && typeof globalThis.gc === 'function') {
  process.on('message', (m) => {
    if (m !== 'heap') return;
    // Two passes: the first runs finalisers that free more on the second.
    globalThis.gc();
    globalThis.gc();
    process.send({ heap: process.memoryUsage() });
  });
  // The channel must not keep a server alive that was told to stop.
  process.channel?.unref();
}
