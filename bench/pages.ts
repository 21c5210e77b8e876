export async function runPages(_opts: Record<string, unknown>): Promise<string> {
  return 'not yet measured';
}
