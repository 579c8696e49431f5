import { z } from 'zod';
import { defineTaskType } from '../../src/tasks/registry.js';

/** The bench's chunk i: its number padded to `bytes` characters. */
export const benchChunk = (i: number, bytes: number): string => String(i).padEnd(bytes, '.');
/** Chunks a handler may have on their way before it waits: the same window for taskcast and BullMQ. */
export const OUTPUT_WINDOW = 100;

/**
 * Task types of `npm run bench`, loaded by its gateway and worker through TASK_MODULES.
 * `burst`: `chunks` output chunks of `bytes` characters, called as fast as the handler can, with
 * at most OUTPUT_WINDOW on their way; then COMPLETED.
 */
export default [
  defineTaskType({
    name: 'burst',
    params: z.strictObject({ chunks: z.number().int().min(1).max(1_000_000), bytes: z.number().int().min(1).max(65_536) }),
    async run(ctx) {
      const { chunks, bytes } = ctx.params;
      let written: Promise<void> = Promise.resolve();
      for (let i = 0; i < chunks; i++) {
        written = ctx.output(benchChunk(i, bytes));
        if (i % OUTPUT_WINDOW === OUTPUT_WINDOW - 1) await written;
      }
      await written;
    },
  }),
];
