import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ExitCode, UserError } from '../../tools/exit-codes.js';
import { kernelBuildDir } from '../../tools/paths.js';
import { checkModule, loadProfile, parseProfile, referenceProfiles, resolveModule } from '../../tools/profile.js';
import { REFERENCE_DEVICE_PATHS } from '../../tools/reference-driver.js';
import { scratchDir } from '../scratch-dir.js';

const KERNEL = '6.1.0-56-amd64';
const dir = scratchDir('profile-test-');

const minimal = { name: 'x', device: '/dev/x', size: 8192 };

/** A usage error (exit 2) on one line whose text matches `pattern`. */
function expectBadProfile(json: unknown, pattern: RegExp): void {
  let caught: unknown;
  try {
    parseProfile(json, '/p/my.json', KERNEL);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(UserError);
  expect((caught as UserError).exitCode).toBe(ExitCode.USAGE);
  expect((caught as UserError).message).toMatch(/^my\.json: /);
  expect((caught as UserError).message).toMatch(pattern);
  expect((caught as UserError).message).not.toContain('\n');
}

describe('parseProfile', () => {
  it('fills the optional keys with the cautious defaults', () => {
    const profile = parseProfile(minimal, '/p/my.json', KERNEL);
    expect(profile).toMatchObject({
      ...minimal, offset: 0, moduleParams: '', writable: false, initial: 'any', population: 'any', private: 'any', readWrite: false,
    });
    expect(profile.module).toBeUndefined();
  });

  it('keeps every key it is given', () => {
    const full = { ...minimal, module: 'm.ko', moduleParams: 'a=1', offset: 4096, writable: true, initial: 'zero', population: 'on-demand', private: 'cow', readWrite: true, writer: '/dev/w' };
    expect(parseProfile(full, '/p/my.json', KERNEL)).toMatchObject({ ...full, module: '/p/m.ko' });
  });

  it.each([
    [{ ...minimal, frob: 1 }, /unknown key "frob"/],
    [{ device: '/dev/x', size: 4096 }, /missing required key "name"/],
    [{ name: 'x', size: 4096 }, /missing required key "device"/],
    [{ name: 'x', device: '/dev/x' }, /missing required key "size"/],
    [{ ...minimal, device: 'dev/x' }, /"device" must be an absolute path/],
    [{ ...minimal, size: 0 }, /"size" must be a positive number/],
    [{ ...minimal, size: 100 }, /"size" must be a multiple of 4096/],
    [{ ...minimal, offset: 10 }, /"offset" must be a multiple of 4096/],
    [{ ...minimal, size: '4096' }, /"size" must be a positive number of bytes, not "4096"/],
    [{ ...minimal, writable: 'yes' }, /"writable" must be true or false/],
    [{ ...minimal, private: 'maybe' }, /"private" must be "cow", "rejected" or "any"/],
    [{ ...minimal, population: 'lazy' }, /"population" must be/],
    [[minimal], /a profile is a JSON object/],
  ])('refuses %j', (json, pattern) => expectBadProfile(json, pattern));
});

describe('parseProfile: setup profiles (#11 item 3)', () => {
  const setup = { name: 'x', device: '/dev/dri/card0', setup: 'setups/drm.ts' };
  const finding = { case: 'a case', finding: 'what the driver does', match: '^expected' };

  it('resolves the setup next to the profile, gives it its params, and needs no size', () => {
    const findings = [finding, { ...finding, case: 'another', series: ['6.1'] }];
    const profile = parseProfile({ ...setup, setupParams: { width: 64 }, interiorOffsets: false, knownFindings: findings }, '/p/my.json', KERNEL);
    expect(profile).toMatchObject({ setup: { module: '/p/setups/drm.ts', params: { width: 64 } }, interiorOffsets: false, knownFindings: findings, offset: 0 });
    expect(profile.size).toBeUndefined();
    expect(parseProfile({ ...setup, size: 8192 }, '/p/my.json', KERNEL)).toMatchObject({ size: 8192, setup: { params: {} } });
    expect(parseProfile(minimal, '/p/my.json', KERNEL)).toMatchObject({ interiorOffsets: true, knownFindings: [] });
    expect(parseProfile(minimal, '/p/my.json', KERNEL).setup).toBeUndefined();
  });

  it.each([
    [{ name: 'x', device: '/dev/x' }, /missing required key "size" \(or a "setup"/],
    [{ ...minimal, setupParams: {} }, /"setupParams" needs "setup"/],
    [{ ...setup, setup: 'drm.json' }, /"setup" must be a path to a TypeScript or JavaScript module/],
    [{ ...setup, setupParams: [1] }, /"setupParams" must be an object/],
    [{ ...setup, offset: 4096 }, /"offset" describes a fixed region of the node/],
    [{ ...setup, readWrite: false }, /"readWrite" describes a fixed region/],
    [{ ...setup, writer: '/dev/w' }, /"writer" describes a fixed region/],
    [{ ...setup, interiorOffsets: 'no' }, /"interiorOffsets" must be true or false/],
    [{ ...setup, knownFindings: [{ ...finding, match: '(' }] }, /"knownFindings" must be a list of/],
    [{ ...setup, knownFindings: [{ ...finding, extra: 1 }] }, /"knownFindings" must be a list of/],
    [{ ...setup, knownFindings: [finding, finding] }, /one per case/],
    [{ ...setup, knownFindings: [{ ...finding, series: ['6'] }] }, /"knownFindings" must be/],
    [{ ...setup, knownFindings: [{ case: 'c', finding: '' , match: 'x' }] }, /"knownFindings" must be/],
  ])('refuses %j', (json, pattern) => expectBadProfile(json, pattern));
});

describe('modules', () => {
  it('resolves @build/ against the kernel build directory and other paths against the profile', () => {
    expect(resolveModule('@build/kmod/mmapkit.ko', '/p/my.json', KERNEL)).toBe(path.join(kernelBuildDir(KERNEL), 'kmod/mmapkit.ko'));
    expect(resolveModule('../m.ko', '/p/q/my.json', KERNEL)).toBe('/p/m.ko');
    expect(resolveModule('/abs/m.ko', '/p/my.json', KERNEL)).toBe('/abs/m.ko');
  });

  it('refuses a module that does not exist, or one that is not a module of this kernel', () => {
    const missing = parseProfile({ ...minimal, module: 'missing.ko' }, path.join(dir(), 'a.json'), KERNEL);
    expect(() => checkModule(missing, KERNEL)).toThrow(/"module" .*missing\.ko does not exist/);
    writeFileSync(path.join(dir(), 'fake.ko'), 'not an ELF module');
    const fake = parseProfile({ ...minimal, module: 'fake.ko' }, path.join(dir(), 'b.json'), KERNEL);
    expect(() => checkModule(fake, KERNEL)).toThrow(/was built for an unknown kernel, not 6\.1\.0-56-amd64/);
  });
});

describe('files', () => {
  it('names the file when it is missing or not JSON', () => {
    expect(() => loadProfile(path.join(dir(), 'none.json'), KERNEL)).toThrow(/does not exist/);
    writeFileSync(path.join(dir(), 'broken.json'), '{ "name": ');
    expect(() => loadProfile(path.join(dir(), 'broken.json'), KERNEL)).toThrow(/^broken\.json: not valid JSON/);
  });

  it('the reference profiles load, one for each device of the reference driver', () => {
    const devices = referenceProfiles(KERNEL).map((profile) => profile.device);
    expect(devices.toSorted()).toEqual(Object.values(REFERENCE_DEVICE_PATHS).toSorted());
  });
});
