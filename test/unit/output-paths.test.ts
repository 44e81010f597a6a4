// Output paths are tried before a run (tools/cli/output-paths.ts): a path that
// cannot be written is a one-line usage error naming the option, and a
// path that can is left as it was.
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ExitCode } from '../../tools/exit-codes.js';
import { checkWritableDir, checkWritableFile } from '../../tools/cli/output-paths.js';
import { userErrorOf } from './user-error.js';
import { scratchDir } from '../scratch-dir.js';

const scratch = scratchDir('mmapkit-output-paths-test-');

const usageError = (action: () => void): string => userErrorOf(action, ExitCode.USAGE);

describe('checkWritableFile', () => {
  it('accepts a new file in a new directory and leaves no file behind', () => {
    const file = path.join(scratch(), 'new', 'deeper', 'results.json');
    checkWritableFile(file, '--results');
    expect(existsSync(file)).toBe(false);
    expect(existsSync(path.dirname(file))).toBe(true);
  });

  it('accepts an existing file without touching its content', () => {
    const file = path.join(scratch(), 'existing.json');
    writeFileSync(file, 'kept');
    checkWritableFile(file, '--results');
    expect(readFileSync(file, 'utf8')).toBe('kept');
  });

  it('accepts /dev/null, which is no regular file', () => {
    checkWritableFile('/dev/null', '--output-file');
  });

  it.each(['/proc/x.json', '/proc/a/b/x.json'])('refuses %s, naming the option and the path', (file) => {
    const message = usageError(() => checkWritableFile(file, '--results'));
    expect(message).toMatch(/^--results: cannot write /);
    expect(message).toContain(file);
  });

  it('refuses a directory and a path under a file', () => {
    expect(usageError(() => checkWritableFile(scratch(), '--output-file'))).toMatch(/^--output-file: .* is a directory/);
    const file = path.join(scratch(), 'plain');
    writeFileSync(file, '');
    expect(usageError(() => checkWritableFile(path.join(file, 'x.json'), '--results'))).toMatch(/^--results: cannot write .*ENOTDIR/);
  });
});

describe('checkWritableDir', () => {
  it('makes the directory and leaves it empty', () => {
    const dir = path.join(scratch(), 'out', 'trace');
    checkWritableDir(dir, '--out');
    expect(readdirSync(dir)).toEqual([]);
  });

  it('refuses /proc and a file, naming the option', () => {
    expect(usageError(() => checkWritableDir('/proc/t', '--out'))).toMatch(/^--out: cannot write into \/proc\/t/);
    const file = path.join(scratch(), 'not-a-dir');
    writeFileSync(file, '');
    expect(usageError(() => checkWritableDir(file, '--out'))).toMatch(/^--out: .* is not a directory/);
  });

  it('refuses an existing directory no file can be created in, even for root', () => {
    // access(2) says W_OK to root here; only creating a file tells.
    expect(usageError(() => checkWritableDir('/proc/self', '--out'))).toMatch(/^--out: cannot write into \/proc\/self/);
  });
});
