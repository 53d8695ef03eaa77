/**
 * Runs task over items with at most `concurrency` in flight, as a client creating many objects would;
 * with a label, prints progress at every fifth of the way.
 */
export async function inParallel<T>(
  items: readonly T[],
  concurrency: number,
  task: (item: T) => Promise<unknown>,
  label?: string,
): Promise<void> {
  let next = 0;
  let done = 0;
  const every = Math.max(1, Math.ceil(items.length / 5));
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) {
        const item = items[next++] as T;
        await task(item);
        done++;
        if (label && (done % every === 0 || done === items.length))
          console.log(`    ${label}: ${done}/${items.length}`);
      }
    }),
  );
}
