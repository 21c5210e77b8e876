export async function runConsole(_opts: Record<string, unknown>): Promise<string> {
  return 'not yet measured';
}
