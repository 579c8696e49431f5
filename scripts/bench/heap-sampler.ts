/**
 * Preloaded (`--import`) into a bench process by `npm run bench -- --heap-prof DIR`: samples every
 * allocation site, including objects the GC has already collected (what --heap-prof leaves out),
 * one sample per HEAP_SAMPLE_BYTES allocated (default 32768), and writes
 * `DIR/<pid>.heapprofile` when the process exits.
 */
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.HEAP_PROFILE_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('HeapProfiler.startSampling', {
    samplingInterval: Number(process.env.HEAP_SAMPLE_BYTES ?? 32768),
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  process.once('exit', () => {
    // An in-thread session answers synchronously, so the profile is written before the exit.
    session.post('HeapProfiler.stopSampling', (err, result) => {
      if (!err) writeFileSync(join(dir, `${process.pid}.heapprofile`), JSON.stringify(result.profile));
    });
  });
}
