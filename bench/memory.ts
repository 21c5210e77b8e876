export async function runMemory(_opts: Record<string, unknown>): Promise<string> {
  return 'not yet measured';
}
