import { z } from 'zod';
import { defineTaskType } from '../registry.js';

/** The reference task: four stages of `stage_ms` each, as in the original demo. */
export function referenceTask(defaultStageMs: number) {
  return defineTaskType({
    name: 'reference',
    params: z.strictObject({ stage_ms: z.number().int().min(0).max(600_000).default(defaultStageMs) }),
    async run(ctx) {
      const work = () => ctx.sleep(ctx.params.stage_ms);
      await ctx.stage('STARTED', 25, work);
      await ctx.stage('PROCESSING', 50, work);
      await ctx.stage('CONCLUDING', 75, work);
      await work();
    },
  });
}
