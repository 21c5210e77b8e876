import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { askHidden } from '../../src/cli/prompt.js';

/** A terminal whose keys arrive as `typed`, and the text the user would see. */
function terminal() {
  const input = new PassThrough() as PassThrough & NodeJS.ReadStream;
  let shown = '';
  const output = new PassThrough() as PassThrough & NodeJS.WriteStream;
  output.on('data', (c: Buffer) => {
    shown += c.toString();
  });
  return { input, output, shown: () => shown };
}

describe('askHidden', () => {
  it('should take two answers pasted in one burst, echoing neither', async () => {
    const t = terminal();
    const asked = askHidden(['First: ', 'Again: '], t.input, t.output);
    t.input.write('correct horse 1\rcorrect horse 1\r');
    expect(await asked).toEqual(['correct horse 1', 'correct horse 1']);
    expect(t.shown()).toContain('First: ');
    expect(t.shown()).toContain('Again: ');
    expect(t.shown()).not.toContain('correct horse');
  });

  it('should take answers typed one after the other', async () => {
    const t = terminal();
    const asked = askHidden(['First: ', 'Again: '], t.input, t.output);
    t.input.write('one\r');
    await new Promise((r) => setTimeout(r, 20));
    t.input.write('two\r');
    expect(await asked).toEqual(['one', 'two']);
  });

  it('should cancel on Ctrl-C with nothing answered', async () => {
    const t = terminal();
    const asked = askHidden(['First: ', 'Again: '], t.input, t.output);
    t.input.write('half');
    t.input.write('\x03');
    await expect(asked).rejects.toThrow('cancelled');
  });
});
