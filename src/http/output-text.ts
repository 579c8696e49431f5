import { Readable } from 'node:stream';
import type { TaskStore } from '../store/task-store.js';
import { OutputRule, chunkText } from '../wire/output.js';

/** Events read per XRANGE while the output is rebuilt. */
const PAGE = 1000;

/**
 * A task's output text up to the event `upTo` (inclusive), rebuilt with the exactly-once rule:
 * committed chunks are written as their stage commits them, page by page, so memory holds one
 * page and the stage in progress, never the whole output; the tentative chunks of that stage come
 * last. The first page is read before this resolves, so a Redis failure is still an error answer.
 */
export async function outputText(store: TaskStore, taskId: string, upTo: string): Promise<Readable> {
  const rule = new OutputRule();
  let page = await store.events(taskId, { upTo, count: PAGE });
  async function* text(): AsyncGenerator<string> {
    for (;;) {
      let committed = '';
      for (const event of page) {
        const change = rule.apply(event);
        if (change?.kind === 'commit') for (const chunk of change.chunks) committed += chunkText(chunk);
      }
      if (committed !== '') yield committed;
      const last = page.at(-1)?.id;
      if (page.length < PAGE || last === upTo || last === undefined) break;
      page = await store.events(taskId, { after: last, upTo, count: PAGE });
    }
    const tentative = rule.tentative.map(chunkText).join('');
    if (tentative !== '') yield tentative;
  }
  return Readable.from(text(), { objectMode: false });
}
