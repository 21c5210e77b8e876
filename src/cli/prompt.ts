/**
 * @module cli/prompt
 * Asks for a secret on the terminal without showing it. node:readline echoes what is typed
 * to its output stream; here that stream drops everything once the question is on screen.
 */
import { createInterface } from 'node:readline/promises';
import { Writable } from 'node:stream';
import { CliError } from './command.js';

/** Reads one line from a terminal with echo off; Ctrl-C cancels with a CliError. */
export async function askHidden(
  question: string,
  input: NodeJS.ReadStream = process.stdin,
  output: NodeJS.WriteStream = process.stderr,
): Promise<string> {
  let muted = false;
  const screen = new Writable({
    write(chunk, encoding, done) {
      if (!muted) output.write(chunk, encoding);
      done();
    },
  });
  const rl = createInterface({ input, output: screen, terminal: true });
  const cancel = new AbortController();
  rl.on('SIGINT', () => cancel.abort());

  try {
    const answer = rl.question(question, { signal: cancel.signal });
    // question() has written the prompt by now; what follows is typing.
    muted = true;
    return await answer;
  } catch (err) {
    if (cancel.signal.aborted) throw new CliError('cancelled');
    throw err;
  } finally {
    output.write('\n');
    rl.close();
  }
}
