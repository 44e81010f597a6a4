/**
 * The agent's python3 zygote (guest/python-host.ts), run here on the host: each program ends and
 * prints as `python3 -I -S -c` with its environment would, and an fd handed over is the caller's
 * own open file as fd 3.
 */
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PythonHost } from '../../guest/python-host.js';
import { scratchDir } from '../scratch-dir.js';

describe('PythonHost', () => {
  const host = new PythonHost();
  const dir = scratchDir('mmapkit-python-host-');

  it('runs each program in a fresh child with its environment, stdout and stderr in one output', async () => {
    const program = "import os, sys\nprint('out', os.environ['WORD'], __name__)\nsys.stdout.flush()\nprint('err', file=sys.stderr)\nx = 1";
    expect(await host.run({ program, env: { WORD: 'first' } })).toEqual({ code: 0, signal: null, output: 'out first __main__\nerr\n' });
    // Nothing of the program before (its globals, its environment) is left in the next one.
    const next = "import os\nprint(os.environ.get('WORD'), 'x' in globals())";
    expect(await host.run({ program: next })).toEqual({ code: 0, signal: null, output: 'None False\n' });
  });

  it('reports the exit status, an uncaught exception and a signal as a process would', async () => {
    expect(await host.run({ program: 'import sys\nsys.exit(3)' })).toMatchObject({ code: 3, signal: null });
    const raised = await host.run({ program: "raise ValueError('no')" });
    expect(raised.code).toBe(1);
    expect(raised.output).toContain('ValueError: no');
    expect(await host.run({ program: 'import os, signal\nos.kill(os.getpid(), signal.SIGKILL)' })).toMatchObject({ code: null, signal: 'SIGKILL' });
    // The zygote itself survives all of them.
    expect(await host.run({ program: "print('still here')" })).toMatchObject({ code: 0, output: 'still here\n' });
  });

  it("hands over the caller's fd as fd 3: the same open file, its offset shared", async () => {
    const file = path.join(dir(), 'shared');
    const fd = openSync(file, 'w+');
    try {
      writeSync(fd, 'before ');
      const program = "import os\nos.write(3, b'from python')\nprint(os.lseek(3, 0, os.SEEK_CUR))";
      const result = await host.run({ program, fd });
      expect(result).toEqual({ code: 0, signal: null, output: '18\n' });
      // A second open of the file would have written at offset 0; the handed-over fd wrote after 'before '.
      writeSync(fd, '!');
    } finally {
      closeSync(fd);
    }
    expect(readFileSync(file, 'utf8')).toBe('before from python!');
  });
});
