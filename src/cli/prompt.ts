/**
 * @module cli/prompt
 * Asks for secrets on the terminal without showing them. node:readline echoes what is typed
 * to its output stream; here that stream is muted, and the questions are written beside it.
 */
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { CliError } from './command.js';

/**
 * Reads one line per question from a terminal with echo off; Ctrl-C cancels with a CliError.
 * Lines are taken as they come: answers pasted in one burst arrive in one read, and a question
 * asked after its line had arrived (readline's own question()) waited for another forever.
 */
export function askHidden(
  questions: readonly string[],
  input: NodeJS.ReadStream = process.stdin,
  output: NodeJS.WriteStream = process.stderr,
): Promise<string[]> {
  const muted = new Writable({ write: (_chunk, _encoding, done) => done() });
  const rl = createInterface({ input, output: muted, terminal: true });
  return new Promise<string[]>((resolve, reject) => {
    const answers: string[] = [];
    const ask = () => {
      if (answers.length === questions.length) {
        rl.close();
        resolve(answers);
      } else output.write(questions[answers.length]!);
    };
    rl.on('line', (line) => {
      if (answers.length === questions.length) return;
      answers.push(line);
      output.write('\n');
      ask();
    });
    rl.on('SIGINT', () => {
      output.write('\n');
      rl.close();
      reject(new CliError('cancelled'));
    });
    rl.on('close', () => {
      if (answers.length < questions.length) reject(new CliError('cancelled'));
    });
    ask();
  });
}
