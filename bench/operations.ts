export async function runOperations(_opts: Record<string, unknown>): Promise<string> {
  return 'not yet measured';
}
