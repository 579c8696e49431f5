/**
 * `work`'s result, or undefined once `ms` have passed without it; `work` then goes on unwatched
 * (its rejection still rejects this when it comes first). The timer keeps no process alive and
 * is cleared as soon as either ends.
 */
export async function atMost<T>(work: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(resolve, ms, undefined).unref();
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
