// The pure parts of profile setups (#11 item 3): the object a setup returns (guest/setup-api.ts), where its
// bundle goes (tools/test/setup-bundle.ts), its request and answer on the guest protocol, and how a known
// finding turns a case's verdict (tools/test/known-findings.ts).
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkResult, checkRequest } from '../../guest/protocol-check.js';
import { decodeMessage, encodeMessage } from '../../guest/protocol.js';
import { checkSetupObject } from '../../guest/setup-api.js';
import { DRIVER_FINDING, judgeKnownFinding } from '../../tools/test/known-findings.js';
import { SETUPS_DIR, setupBundlePath } from '../../tools/test/setup-bundle.js';
import drm from '../profiles/real/setups/drm.js';

const object = { fd: 5, fds: [5], offset: 0x100000000n, size: 1048576n, reach: 'fork' };

describe('checkSetupObject', () => {
  it('accepts an object the suite can map', () => {
    expect(checkSetupObject(object, 4096)).toBeUndefined();
    expect(checkSetupObject({ ...object, fd: 6, fds: [5, 6], offset: 0n, reach: 'reopen' }, 4096)).toBeUndefined();
  });

  it.each([
    ['nothing', undefined, /no object/],
    ['fd -1', { ...object, fd: -1 }, /not an fd/],
    ['fds without fd', { ...object, fds: [4] }, /including fd/],
    ['an unaligned offset', { ...object, offset: 4097n }, /offset 4097, not a page multiple/],
    ['a number offset', { ...object, offset: 4096 }, /offset 4096, not a page multiple \(a BigInt\)/],
    ['size 0', { ...object, size: 0n }, /size 0, not a positive page multiple/],
    ['another reach', { ...object, reach: 'socket' }, /reach socket/],
  ])('refuses %s', (_label, given, reason) => {
    expect(checkSetupObject(given, 4096)).toMatch(reason);
  });
});

describe('the targetOpen request and its answer', () => {
  const overTheChannel = (value: unknown): unknown => (decodeMessage(encodeMessage(value)) as { v: unknown }).v;

  it('carry the module, the device and the params there, and the object back, offsets as BigInts', () => {
    const args = { module: '/x/build/setups/drm-0123.mjs', device: '/dev/dri/card0', params: { width: 512, nested: { a: [1] } } };
    const request = decodeMessage(encodeMessage({ id: 7, op: 'targetOpen', args }));
    expect(checkRequest(request)).toEqual({ id: 7, op: 'targetOpen', args });
    expect(checkResult('targetOpen', overTheChannel({ v: object }))).toEqual(object);
  });

  it('refuses an answer whose offset lost its BigInt, or a request without params', () => {
    expect(() => checkResult('targetOpen', { ...object, offset: 4096 })).toThrow(/targetOpen\.offset must be a BigInt/);
    expect(() => checkRequest({ id: 1, op: 'targetOpen', args: { module: 'm', device: '/dev/x' } })).toThrow(/targetOpen\.args\.params must be an object/);
  });
});

describe('setupBundlePath', () => {
  it('gives each setup source one bundle under build/setups, named after it', () => {
    const a = setupBundlePath('/root/p/setups/drm.ts');
    expect(path.dirname(a)).toBe(SETUPS_DIR);
    expect(path.basename(a)).toMatch(/^drm-[0-9a-f]{12}\.mjs$/);
    expect(setupBundlePath('/root/p/setups/drm.ts')).toBe(a);
    expect(setupBundlePath('/root/q/setups/drm.ts')).not.toBe(a);
  });
});

describe('judgeKnownFinding', () => {
  const known = { case: 'c', finding: 'the driver does X', match: '^expected 0 to be 1' };

  it('reports a failure that matches as the finding', () => {
    expect(judgeKnownFinding(known, 'fail', ['other', 'expected 0 to be 1 // Object.is'])).toEqual({ kind: 'found', note: `${DRIVER_FINDING} the driver does X` });
  });

  it.each([
    ['pass', [], /disappeared: the case passed/],
    ['skip', ['a reason'], /not checked: the case was skipped/],
    ['fail', ['expected 2 to be 1'], /changed: the failure does not match/],
  ] as const)('fails the case when it comes out %s', (state, messages, reason) => {
    const verdict = judgeKnownFinding(known, state, messages);
    expect(verdict.kind).toBe('wrong');
    expect(verdict.kind === 'wrong' && verdict.message).toMatch(reason);
  });
});

describe('the DRM setup', () => {
  const constants = { O_RDWR: 2 } as never;
  const fakeNative = (fail?: string) => {
    const closed: number[] = [];
    const native = {
      open: () => 9,
      close: (fd: number) => void closed.push(fd),
      ioctl: (_fd: number, request: bigint, arg: Uint8Array) => {
        const bytes = Buffer.from(arg);
        if (request === 0xc02064b2n) {
          if (fail === 'create') throw Object.assign(new Error('ENOSYS'), { code: 'ENOSYS' });
          bytes.writeUInt32LE(1, 16); // handle
          bytes.writeUInt32LE(2048, 20); // pitch
          bytes.writeBigUInt64LE(BigInt(2048 * bytes.readUInt32LE(0)), 24); // size
        } else {
          bytes.writeBigUInt64LE(0x100000000n, 8);
        }
        return { result: 0, arg: bytes };
      },
    };
    return { native: native as never, closed };
  };

  it('makes a dumb buffer and maps it at its fake offset, reachable through the same open file only', () => {
    const { native } = fakeNative();
    expect(drm.open({ native, c: constants, pageSize: 4096, device: '/dev/dri/card0', params: { height: 512 } })).toEqual({
      fd: 9, fds: [9], offset: 0x100000000n, size: 1048576n, reach: 'fork',
    });
  });

  it('closes the device when a step fails, naming the step and its errno; refuses unknown params', () => {
    const { native, closed } = fakeNative('create');
    expect(() => drm.open({ native, c: constants, pageSize: 4096, device: '/dev/dri/card0', params: {} })).toThrow(/^DRM_IOCTL_MODE_CREATE_DUMB 512x512x32: ENOSYS$/);
    expect(closed).toEqual([9]);
    expect(() => drm.open({ native, c: constants, pageSize: 4096, device: '/dev/dri/card0', params: { depth: 1 } })).toThrow(/unknown setupParams "depth"/);
    expect(() => drm.open({ native, c: constants, pageSize: 4096, device: '/dev/dri/card0', params: { width: 0 } })).toThrow(/setupParams\.width must be a whole number in \[1, /);
  });
});
