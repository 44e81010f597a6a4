// The buggy-driver fixtures (test/fixtures/kmod, tools/builder/fixtures.ts): each one
// is a complete module source with a valid profile naming its own device.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURES_DIR, fixtureNames, fixtureObject, fixtureProfile } from '../../tools/builder/fixtures.js';
import { parseProfile } from '../../tools/profile.js';

const names = fixtureNames();

describe('fixture list', () => {
  it('lists every fixture directory, the correct one and at least six buggy ones', () => {
    const dirs = readdirSync(FIXTURES_DIR, { withFileTypes: true })
      .filter((entry) => entry.isDirectory() && entry.name !== 'common')
      .map((entry) => entry.name)
      .sort();
    expect(names).toEqual(dirs);
    expect(names).toContain('fixture-correct');
    expect(names.filter((name) => name.startsWith('fixture-bug-')).length).toBeGreaterThanOrEqual(6);
  });

  it('builds each module under build/kernels/<release>/fixtures/<name>/', () => {
    expect(fixtureObject('6.1.0-56-amd64', 'fixture-correct')).toMatch(
      /build\/kernels\/6\.1\.0-56-amd64\/fixtures\/fixture-correct\/fixture-correct\.ko$/,
    );
  });
});

describe.each(names)('%s', (name) => {
  const dir = path.join(FIXTURES_DIR, name);

  it('has a profile that parses and names its own device and module', () => {
    const file = fixtureProfile(name);
    const json = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    const profile = parseProfile(json, file, '6.1.0-56-amd64');
    expect(profile.name).toBe(name);
    expect(profile.device).toBe(`/dev/${name}`);
    // "@build/": the module built for the guest kernel (tools/builder/fixtures.ts), wherever that is.
    expect(json.module).toBe(`@build/fixtures/${name}/${name}.ko`);
    expect(profile.module).toBe(fixtureObject('6.1.0-56-amd64', name));
    expect(profile.size! % 4096).toBe(0);
  });

  it('has its source and a Kbuild that builds it', () => {
    const source = readFileSync(path.join(dir, `${name}.c`), 'utf8');
    expect(readFileSync(path.join(dir, 'Kbuild'), 'utf8')).toMatch(new RegExp(`^obj-m := ${name}\\.o$`, 'm'));
    // The device the profile names is the one the module registers.
    expect(source).toContain(`"${name}"`);
  });

  it('names in its header the bug it carries, its catalogue row and the case that catches it', () => {
    const header = /\/\*([\s\S]*?)\*\//.exec(readFileSync(path.join(dir, `${name}.c`), 'utf8'))?.[1] ?? '';
    if (name === 'fixture-correct') {
      expect(header).toMatch(/every conformance case passes/);
    } else {
      expect(header).toMatch(/taxonomy #\d+/);
      expect(header).toMatch(/catalogue [A-J]\d/);
      expect(header).toMatch(/Caught by:/);
    }
  });

  it('leaves no build output next to its sources', () => {
    expect(readdirSync(dir).filter((file) => /\.(o|ko|mod|cmd|order|symvers)$/.test(file))).toEqual([]);
    expect(existsSync(path.join(dir, 'Module.symvers'))).toBe(false);
  });
});
