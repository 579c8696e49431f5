import { z } from 'zod';
import { defineTaskType } from '../registry.js';

const VOCABULARY = (
  'the a task stream event worker gateway redis log resume exact order chunk token progress stage ' +
  'result client socket replay cursor output line record message runs fast every once again never ' +
  'nothing missed twice in order after disconnect browser watches live long job report'
).split(' ');

/**
 * Streams generated text word by word at `words_per_s`, reporting progress with a message every
 * ten words, and returns a small JSON result: output, progress messages and a result, as a
 * language model's answer would bring them. Stages: STARTED, then the words, then CONCLUDING
 * (which commits them; a run that stops half way writes them again from the first word).
 */
export function typewriterTask() {
  return defineTaskType({
    name: 'typewriter',
    params: z.strictObject({
      words: z.number().int().min(1).max(100_000).default(60),
      words_per_s: z.number().min(0.1).max(100_000).default(10),
    }),
    async run(ctx) {
      const { words, words_per_s: rate } = ctx.params;
      await ctx.stage('STARTED', 5);
      const started = Date.now();
      let characters = 0;
      let lines = 0;
      let written: Promise<void> = Promise.resolve();
      for (let i = 1; i <= words; i++) {
        const word = VOCABULARY[(i * 7919 + words) % VOCABULARY.length]!;
        const endsLine = i % 12 === 0 || i === words;
        const chunk = endsLine ? `${word}\n` : `${word} `;
        characters += chunk.length;
        if (endsLine) lines += 1;
        written = ctx.output(chunk);
        if (i % 10 === 0 || i === words) void ctx.progress(5 + Math.floor((90 * i) / words), `${i} of ${words} words`);
        // Paced from the start, so the rate holds however long each call takes; every 64 words
        // wait for the writes, so a fast rate never runs far ahead of Redis.
        if (i % 64 === 0) await written;
        await ctx.sleep(started + (i * 1000) / rate - Date.now());
      }
      await written;
      await ctx.stage('CONCLUDING', 95);
      return { words, characters, lines, seconds: Math.round((Date.now() - started) / 100) / 10 };
    },
  });
}
