// What the held agent needs before any share is mounted (tools/qemu/agent-runtime.ts):
// ldd's output read, each path resolved to a file under /usr, and the host's own node.
import { describe, expect, it } from 'vitest';
import { SetupError } from '../../tools/exit-codes.js';
import { AGENT_CHECKOUT_FILES, GUEST_NODE, agentRuntime, parseLdd, runtimeFiles, runtimeList } from '../../tools/qemu/agent-runtime.js';
import { ADDON_PATH, AGENT_BUNDLE, REPO_ROOT } from '../../tools/paths.js';
import path from 'node:path';

// `ldd /usr/bin/node` on Debian 12 (node 20), verbatim but for the addresses.
const LDD = `\
\tlinux-vdso.so.1 (0x00007ffd1e5f2000)
\tlibdl.so.2 => /lib/x86_64-linux-gnu/libdl.so.2 (0x00007f62b5872000)
\tlibstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007f62b5600000)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f62b541f000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f62b5893000)
`;

describe('parseLdd', () => {
  it('lists each library and the dynamic linker by the path it is looked up by; the vDSO has no file', () => {
    expect(parseLdd(LDD)).toEqual([
      '/lib/x86_64-linux-gnu/libdl.so.2',
      '/lib/x86_64-linux-gnu/libstdc++.so.6',
      '/lib/x86_64-linux-gnu/libc.so.6',
      '/lib64/ld-linux-x86-64.so.2',
    ]);
  });
  it('refuses a library ldd could not find, and a line it does not understand', () => {
    expect(() => parseLdd('\tlibfoo.so.1 => not found\n')).toThrow(/libfoo\.so\.1 => not found/);
    expect(() => parseLdd('\tsomething else\n')).toThrow(/not understood: 'something else'/);
  });
  it('reads a static program as having none', () => {
    expect(parseLdd('\tstatically linked\n')).toEqual([]);
  });
});

describe('runtimeFiles', () => {
  const links: Record<string, string> = {
    '/lib/x86_64-linux-gnu/libstdc++.so.6': '/usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.30',
    '/lib64/ld-linux-x86-64.so.2': '/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2',
    '/opt/lib/libx.so': '/opt/lib/libx.so',
  };
  const resolve = (file: string): string => links[file] ?? file;
  it('keeps the name the linker opens and the file it really is', () => {
    expect(runtimeFiles(['/lib/x86_64-linux-gnu/libstdc++.so.6', '/lib64/ld-linux-x86-64.so.2'], resolve)).toEqual([
      { lookup: '/lib/x86_64-linux-gnu/libstdc++.so.6', real: '/usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.30' },
      { lookup: '/lib64/ld-linux-x86-64.so.2', real: '/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2' },
    ]);
  });
  it('refuses a file outside /usr, which the guest cannot reach', () => {
    expect(() => runtimeFiles(['/opt/lib/libx.so'], resolve)).toThrow(SetupError);
  });
  it('writes one "LOOKUP REAL" line a file', () => {
    expect(runtimeList(runtimeFiles(['/lib64/ld-linux-x86-64.so.2'], resolve))).toBe('/lib64/ld-linux-x86-64.so.2 /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2\n');
  });
});

describe('agentRuntime on this host', () => {
  it('starts with node and holds the dynamic linker node names, each under /usr', () => {
    const files = agentRuntime();
    expect(files[0]?.lookup).toBe(GUEST_NODE);
    expect(files.length).toBeGreaterThan(1);
    for (const file of files) expect(file.real.startsWith('/usr/')).toBe(true);
    expect(files.some((file) => /\/ld-linux[^/]*\.so/.test(file.lookup))).toBe(true);
  });
});

describe('AGENT_CHECKOUT_FILES', () => {
  it("names the agent's bundle and the addon, relative to the checkout, as init.sh copies them", () => {
    expect(AGENT_CHECKOUT_FILES.map((file) => path.join(REPO_ROOT, file))).toEqual([AGENT_BUNDLE, ADDON_PATH]);
    for (const file of AGENT_CHECKOUT_FILES) expect(path.isAbsolute(file) || file.startsWith('..')).toBe(false);
  });
});
