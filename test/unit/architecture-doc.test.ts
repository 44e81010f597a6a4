/**
 * docs/architecture.md walks a newcomer through `mmapkit test` file by file
 * (each in bold code). A file renamed or removed without the walk following
 * breaks the walk: this fails first.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../tools/paths.js';

const walk = readFileSync(path.join(REPO_ROOT, 'docs', 'architecture.md'), 'utf8');
const named = [...walk.matchAll(/\*\*`([^`]+)`\*\*/g)].map((match) => match[1]!);

describe('docs/architecture.md', () => {
  it('names the files of the pipeline', () => {
    expect(named.length).toBeGreaterThan(20);
  });

  it('names only files that exist, each once', () => {
    expect(named.filter((file) => !existsSync(path.join(REPO_ROOT, file)))).toEqual([]);
    expect(named.filter((file, index) => named.indexOf(file) !== index)).toEqual([]);
  });
});
