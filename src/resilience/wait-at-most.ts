/**
 * @module resilience/wait-at-most
 * Waits for `work`, but no longer than `ms`: for an answer that is welcome but must not hold
 * its caller up (a statistics refresh, Redis at start or at close, a fence, the last round of
 * pending deletes, a response before history rows). Resolves when either comes first and
 * rejects if `work` rejects first; the timer never outlives the wait.
 */
export async function waitAtMost(work: PromiseLike<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  try {
    await Promise.race([work, bound]);
  } finally {
    clearTimeout(timer);
  }
}
