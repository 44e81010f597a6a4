// The guest's initramfs (tools/qemu/initramfs.ts) and the newc cpio writer
// (tools/qemu/cpio.ts): module order from modprobe, the static busybox check,
// the image's contents, its byte format (read back by a parser written here
// and by GNU cpio) and the content-addressed cache.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { INIT_SCRIPT } from '../../tools/paths.js';
import { type CpioEntry, writeCpio } from '../../tools/qemu/cpio.js';
import {
  BUSYBOX,
  busyboxApplets,
  cachedInitramfs,
  type InitramfsInputs,
  initramfsManifest,
  isStaticElf,
  moduleName,
  parseBusyboxList,
  parseModuleOrder,
  readModule,
} from '../../tools/qemu/initramfs.js';
import { scratchDir } from '../scratch-dir.js';

const scratch = scratchDir('mmapkit-initramfs-test-');

// `modprobe -S 6.1.0-56-amd64 --show-depends -a virtio_pci 9pnet_virtio 9p virtio_console`,
// verbatim (each line ends with a space).
const MODPROBE_6_1 = `\
insmod /lib/modules/6.1.0-56-amd64/kernel/drivers/virtio/virtio_ring.ko 
insmod /lib/modules/6.1.0-56-amd64/kernel/drivers/virtio/virtio.ko 
insmod /lib/modules/6.1.0-56-amd64/kernel/drivers/virtio/virtio_pci_modern_dev.ko 
insmod /lib/modules/6.1.0-56-amd64/kernel/drivers/virtio/virtio_pci_legacy_dev.ko 
insmod /lib/modules/6.1.0-56-amd64/kernel/drivers/virtio/virtio_pci.ko 
insmod /lib/modules/6.1.0-56-amd64/kernel/drivers/virtio/virtio_ring.ko 
insmod /lib/modules/6.1.0-56-amd64/kernel/drivers/virtio/virtio.ko 
insmod /lib/modules/6.1.0-56-amd64/kernel/net/9p/9pnet.ko 
insmod /lib/modules/6.1.0-56-amd64/kernel/net/9p/9pnet_virtio.ko 
insmod /lib/modules/6.1.0-56-amd64/kernel/fs/netfs/netfs.ko 
insmod /lib/modules/6.1.0-56-amd64/kernel/fs/fscache/fscache.ko 
insmod /lib/modules/6.1.0-56-amd64/kernel/net/9p/9pnet.ko 
insmod /lib/modules/6.1.0-56-amd64/kernel/fs/9p/9p.ko 
insmod /lib/modules/6.1.0-56-amd64/kernel/drivers/virtio/virtio_ring.ko 
insmod /lib/modules/6.1.0-56-amd64/kernel/drivers/virtio/virtio.ko 
insmod /lib/modules/6.1.0-56-amd64/kernel/drivers/char/virtio_console.ko 
`;

// The same query on a 6.12 kernel, where virtio_console is built in.
const MODPROBE_6_12 = `\
insmod /lib/modules/6.12.48+deb13-amd64/kernel/net/9p/9pnet.ko 
insmod /lib/modules/6.12.48+deb13-amd64/kernel/net/9p/9pnet_virtio.ko 
insmod /lib/modules/6.12.48+deb13-amd64/kernel/fs/netfs/netfs.ko 
insmod /lib/modules/6.12.48+deb13-amd64/kernel/net/9p/9pnet.ko 
insmod /lib/modules/6.12.48+deb13-amd64/kernel/fs/9p/9p.ko 
builtin virtio_console
`;

describe('parseModuleOrder', () => {
  it('lists each module once, in first-seen order (6.1)', () => {
    const dir = '/lib/modules/6.1.0-56-amd64/kernel';
    expect(parseModuleOrder(MODPROBE_6_1)).toEqual([
      `${dir}/drivers/virtio/virtio_ring.ko`,
      `${dir}/drivers/virtio/virtio.ko`,
      `${dir}/drivers/virtio/virtio_pci_modern_dev.ko`,
      `${dir}/drivers/virtio/virtio_pci_legacy_dev.ko`,
      `${dir}/drivers/virtio/virtio_pci.ko`,
      `${dir}/net/9p/9pnet.ko`,
      `${dir}/net/9p/9pnet_virtio.ko`,
      `${dir}/fs/netfs/netfs.ko`,
      `${dir}/fs/fscache/fscache.ko`,
      `${dir}/fs/9p/9p.ko`,
      `${dir}/drivers/char/virtio_console.ko`,
    ]);
  });

  it('skips built-in modules (6.12 virtio_console)', () => {
    const order = parseModuleOrder(MODPROBE_6_12);
    expect(order.map((file) => path.basename(file))).toEqual(['9pnet.ko', '9pnet_virtio.ko', 'netfs.ko', '9p.ko']);
    expect(order.join(' ')).not.toContain('virtio_console');
    expect(order.every((file) => file.startsWith('/'))).toBe(true);
  });

  it('is empty for empty output', () => {
    expect(parseModuleOrder('')).toEqual([]);
    expect(parseModuleOrder('builtin virtio_console\n')).toEqual([]);
  });
});

describe('isStaticElf', () => {
  it('is true for the busybox from busybox-static', () => {
    expect(existsSync(BUSYBOX), `${BUSYBOX} exists (busybox-static)`).toBe(true);
    expect(isStaticElf(readFileSync(BUSYBOX))).toBe(true);
  });

  it('is false for a dynamically linked binary', () => {
    expect(isStaticElf(readFileSync('/usr/bin/node'))).toBe(false);
  });

  it('is false for something that is not an ELF file', () => {
    expect(isStaticElf(Buffer.from('#!/bin/sh\necho this is a script, not an ELF binary at all\n'.repeat(4)))).toBe(false);
    expect(isStaticElf(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))).toBe(false);
    expect(isStaticElf(Buffer.alloc(0))).toBe(false);
  });
});

describe('moduleName and readModule', () => {
  // A stand-in for a module object: only the ELF magic is checked.
  const elf = Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46]), Buffer.from('module body '.repeat(50))]);
  const write = (name: string, data: Buffer): string => {
    const file = path.join(scratch(), name);
    writeFileSync(file, data);
    return file;
  };
  const compressed = (command: string, ...args: string[]): Buffer => {
    const result = spawnSync(command, args, { input: elf });
    expect(result.status).toBe(0);
    return result.stdout;
  };

  it('drops the compression suffix, and only that', () => {
    expect(moduleName('/lib/modules/6.12.117+deb12-amd64/kernel/fs/9p/9p.ko.xz')).toBe('9p.ko');
    expect(moduleName('netfs.ko.zst')).toBe('netfs.ko');
    expect(moduleName('virtio.ko.gz')).toBe('virtio.ko');
    expect(moduleName('/lib/modules/6.1.0-56-amd64/kernel/fs/9p/9p.ko')).toBe('9p.ko');
  });

  it('reads a plain .ko as it is', () => {
    expect(readModule(write('plain.ko', elf))).toEqual({ name: 'plain.ko', data: elf });
  });

  it('decompresses .ko.xz (Debian 6.12), .ko.zst and .ko.gz', () => {
    expect(readModule(write('a.ko.xz', compressed('xz', '-c')))).toEqual({ name: 'a.ko', data: elf });
    expect(readModule(write('b.ko.zst', compressed('zstd', '-cq')))).toEqual({ name: 'b.ko', data: elf });
    expect(readModule(write('c.ko.gz', compressed('gzip', '-c')))).toEqual({ name: 'c.ko', data: elf });
  });

  it('fails with a setup error for a damaged compressed module', () => {
    expect(() => readModule(write('broken.ko.xz', Buffer.from('not xz')))).toThrow(/cannot decompress .*broken\.ko\.xz/);
  });
});

/** Small stand-ins for the real files; contents chosen to exercise the 4-byte padding. */
function fakeInputs(tag = ''): InitramfsInputs {
  return {
    busybox: Buffer.from(`busybox${tag}`),
    init: Buffer.from(`#!/bin/sh\necho init${tag}\n`),
    modules: [
      { name: 'virtio_ring.ko', data: Buffer.from('ring') },
      { name: 'virtio.ko', data: Buffer.from('virtio!') },
      { name: '9p.ko', data: Buffer.alloc(0) },
    ],
    guestRoot: [
      { type: 'dir', path: 'usr', mode: 0o755 },
      { type: 'symlink', path: 'bin', target: 'usr/bin' },
      { type: 'dir', path: 'etc', mode: 0o755 },
      { type: 'file', path: 'etc/passwd', mode: 0o644, data: Buffer.from(`root:x:0:0:root:/root:/bin/bash${tag}\n`) },
    ],
    applets: ['mount', 'insmod', '['],
    agentRuntime: [
      { lookup: '/usr/bin/node', real: '/usr/bin/node' },
      { lookup: '/lib64/ld-linux-x86-64.so.2', real: `/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2${tag}` },
    ],
    agentCheckoutFiles: ['build/guest/agent.cjs', 'native/build/Release/addon.node'],
  };
}

describe('initramfsManifest', () => {
  const inputs = fakeInputs();
  const manifest = initramfsManifest(inputs);
  const entry = (entryPath: string): CpioEntry | undefined => manifest.find((candidate) => candidate.path === entryPath);

  it('has /init, executable, with the init script', () => {
    expect(entry('init')).toEqual({ type: 'file', path: 'init', mode: 0o755, data: inputs.init });
  });

  it('has bin/busybox, executable, and bin/sh pointing at it', () => {
    expect(entry('bin/busybox')).toEqual({ type: 'file', path: 'bin/busybox', mode: 0o755, data: inputs.busybox });
    expect(entry('bin/sh')).toEqual({ type: 'symlink', path: 'bin/sh', target: 'busybox' });
  });

  it('has a link in bin to busybox for each applet, as `busybox --install -s /bin` would make', () => {
    for (const name of inputs.applets) expect(entry(`bin/${name}`)).toEqual({ type: 'symlink', path: `bin/${name}`, target: 'busybox' });
  });

  it('has /dev/console as character device 5:1', () => {
    expect(entry('dev/console')).toMatchObject({ type: 'chardev', major: 5, minor: 1 });
  });

  it('has every module and lib/modules/order listing them in load order', () => {
    for (const module of inputs.modules) {
      expect(entry(`lib/modules/${module.name}`)).toMatchObject({ type: 'file', data: module.data });
    }
    const order = entry('lib/modules/order');
    expect(order?.type).toBe('file');
    const text = order?.type === 'file' ? Buffer.from(order.data).toString() : '';
    expect(text).toBe('virtio_ring.ko\nvirtio.ko\n9p.ko\n');
  });

  it('creates every directory before anything inside it', () => {
    manifest.forEach((item, index) => {
      const parent = path.posix.dirname(item.path);
      if (parent === '.') return;
      const parentIndex = manifest.findIndex((candidate) => candidate.path === parent && candidate.type === 'dir');
      expect(parentIndex, `${parent} before ${item.path}`).toBeGreaterThanOrEqual(0);
      expect(parentIndex).toBeLessThan(index);
    });
  });

  it('has the mount points init uses', () => {
    for (const dir of ['proc', 'sys', 'dev', 'sysroot', 'tmp']) expect(entry(dir)?.type).toBe('dir');
  });

  it("lists the agent's runtime, node first, one LOOKUP REAL a line, where init.sh reads it", () => {
    const list = entry('agent-runtime');
    expect(list?.type === 'file' && Buffer.from(list.data).toString()).toBe(
      '/usr/bin/node /usr/bin/node\n/lib64/ld-linux-x86-64.so.2 /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2\n',
    );
    expect(readFileSync(INIT_SCRIPT, 'utf8')).toContain('</agent-runtime');
  });

  it("lists the checkout's files the held agent opens, one a line, where init.sh reads it", () => {
    const list = entry('agent-checkout-files');
    expect(list?.type === 'file' && Buffer.from(list.data).toString()).toBe('build/guest/agent.cjs\nnative/build/Release/addon.node\n');
    expect(readFileSync(INIT_SCRIPT, 'utf8')).toContain('</agent-checkout-files');
  });

  it('has the guest root skeleton under guest-root/, which init.sh copies', () => {
    for (const item of inputs.guestRoot) expect(entry(`guest-root/${item.path}`)).toEqual({ ...item, path: `guest-root/${item.path}` });
    expect(readFileSync(INIT_SCRIPT, 'utf8')).toContain('cp -a /guest-root/. ');
  });
});

interface NewcRecord {
  name: string;
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  mtime: number;
  rdevMajor: number;
  rdevMinor: number;
  data: Buffer;
}

/**
 * A strict reader of the "newc" format: every header 4-byte aligned with
 * magic 070701 and thirteen 8-digit hex fields, the NUL-terminated name
 * padded to 4, the data padded to 4, TRAILER!!! last and nothing after it
 * but padding.
 */
function parseNewc(archive: Buffer): NewcRecord[] {
  const records: NewcRecord[] = [];
  let offset = 0;
  for (;;) {
    expect(offset % 4, `header at ${offset} is aligned`).toBe(0);
    expect(archive.toString('latin1', offset, offset + 6), `magic at ${offset}`).toBe('070701');
    const fieldText = archive.toString('latin1', offset + 6, offset + 110);
    expect(fieldText).toMatch(/^[0-9a-f]{104}$/);
    const field = (i: number): number => parseInt(fieldText.slice(i * 8, i * 8 + 8), 16);
    const nameSize = field(11);
    const fileSize = field(6);
    const nameStart = offset + 110;
    expect(archive[nameStart + nameSize - 1], 'name ends with NUL').toBe(0);
    const name = archive.toString('utf8', nameStart, nameStart + nameSize - 1);
    const dataStart = nameStart + nameSize + pad4(110 + nameSize);
    for (let i = nameStart + nameSize; i < dataStart; i++) expect(archive[i], 'name padding is NUL').toBe(0);
    const dataEnd = dataStart + fileSize;
    expect(dataEnd).toBeLessThanOrEqual(archive.length);
    records.push({
      name,
      ino: field(0),
      mode: field(1),
      uid: field(2),
      gid: field(3),
      nlink: field(4),
      mtime: field(5),
      rdevMajor: field(9),
      rdevMinor: field(10),
      data: archive.subarray(dataStart, dataEnd),
    });
    offset = dataEnd + pad4(fileSize);
    if (name === 'TRAILER!!!') break;
  }
  expect(offset, 'nothing after the trailer').toBe(archive.length);
  return records;
}

const pad4 = (length: number): number => (4 - (length % 4)) % 4;

const S_IFMT = 0o170000;
const TYPE_BITS = { dir: 0o040000, file: 0o100000, symlink: 0o120000, chardev: 0o020000 } as const;

/** GNU cpio's view of an archive: names from `cpio -it`, sizes from `cpio -itv`. */
function gnuCpioList(archive: Buffer): { names: string[]; sizes: Map<string, string> } {
  const file = path.join(scratch(), `list-${Math.random().toString(36).slice(2)}.cpio`);
  writeFileSync(file, archive);
  const run = (flags: string): string => {
    const result = spawnSync('sh', ['-c', `cpio ${flags} --quiet < "$1"`, 'sh', file], {
      encoding: 'utf8',
      env: { ...process.env, LC_ALL: 'C', TZ: 'UTC' },
    });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr, 'GNU cpio has no complaint').toBe('');
    return result.stdout;
  };
  const names = run('-it').split('\n').slice(0, -1);
  const sizes = new Map<string, string>();
  for (const line of run('-itv').split('\n').slice(0, -1)) {
    // drwxr-xr-x   1 root  root   0 Jan  1  1970 bin
    // crw-------   1 root  root   5,   1 Jan  1  1970 dev/console
    const match = /^\S+\s+\d+\s+\S+\s+\S+\s+(\d+(?:,\s+\d+)?)\s+\w{3}\s+\d+\s+\d{4}\s+(.*?)(?: -> .*)?$/.exec(line);
    expect(match, line).not.toBeNull();
    sizes.set(match?.[2] ?? '', (match?.[1] ?? '').replace(/\s+/g, ''));
  }
  return { names, sizes };
}

describe('busybox applets', () => {
  it('parses busybox --list without sh (linked on its own) and busybox', () => {
    expect(parseBusyboxList('[\n[[\nmount\nsh\nbusybox\ninsmod\n')).toEqual(['[', '[[', 'mount', 'insmod']);
  });

  it('refuses a name that would make a link outside bin', () => {
    expect(() => parseBusyboxList('mount\n../etc/passwd\n')).toThrow(/not an applet name/);
    expect(() => parseBusyboxList('..\n')).toThrow(/not an applet name/);
  });

  // init.sh runs these by name from PATH=/bin before the guest's root exists;
  // with no `busybox --install` at boot, a missing link is init dying with status 127.
  const INIT_COMMANDS = ['mount', 'cat', 'insmod', 'mkdir', 'cp', 'find', 'ln', 'chroot', 'poweroff', 'setsid', 'cttyhack', 'sleep', 'umount', 'mkfifo', 'env'];

  it("the host's busybox-static has every command init.sh runs", () => {
    const applets = busyboxApplets(BUSYBOX);
    for (const command of INIT_COMMANDS) expect(applets, command).toContain(command);
  });

  it('init.sh runs each of those commands and relies on the image for the links', () => {
    const script = readFileSync(INIT_SCRIPT, 'utf8');
    for (const command of INIT_COMMANDS) expect(script, command).toMatch(new RegExp(`(^|[\\s;(|&])${command}\\s`, 'm'));
    expect(script, 'a line outside comments running busybox --install').not.toMatch(/^[^#\n]*--install/m);
  });
});

describe('writeCpio', () => {
  const inputs: InitramfsInputs = {
    busybox: readFileSync(BUSYBOX),
    init: readFileSync(INIT_SCRIPT),
    modules: fakeInputs().modules,
    guestRoot: fakeInputs().guestRoot,
    applets: busyboxApplets(BUSYBOX),
    agentRuntime: fakeInputs().agentRuntime,
    agentCheckoutFiles: fakeInputs().agentCheckoutFiles,
  };
  const manifest = initramfsManifest(inputs);
  const archive = writeCpio(manifest);
  const records = parseNewc(archive);

  it('writes one record per entry, in order, then TRAILER!!!', () => {
    expect(records.map((record) => record.name)).toEqual([...manifest.map((item) => item.path), 'TRAILER!!!']);
  });

  it('stores each entry with its type, permissions, contents and device numbers', () => {
    manifest.forEach((item, index) => {
      const record = records[index];
      expect((record?.mode ?? 0) & S_IFMT).toBe(TYPE_BITS[item.type]);
      switch (item.type) {
        case 'file':
          expect(record?.mode).toBe(TYPE_BITS.file | item.mode);
          expect(record?.data.equals(Buffer.from(item.data)), item.path).toBe(true);
          break;
        case 'dir':
          expect(record?.mode).toBe(TYPE_BITS.dir | item.mode);
          expect(record?.data.length).toBe(0);
          break;
        case 'symlink':
          expect(record?.data.toString()).toBe(item.target);
          break;
        case 'chardev':
          expect(record?.mode).toBe(TYPE_BITS.chardev | item.mode);
          expect([record?.rdevMajor, record?.rdevMinor]).toEqual([item.major, item.minor]);
          break;
      }
    });
  });

  it('is reproducible: root-owned, mtime 0, distinct inodes, same bytes every time', () => {
    const entries = records.slice(0, -1);
    expect(entries.every((record) => record.uid === 0 && record.gid === 0 && record.mtime === 0)).toBe(true);
    expect(new Set(entries.map((record) => record.ino)).size).toBe(entries.length);
    expect(writeCpio(manifest).equals(archive)).toBe(true);
  });

  it('reads back the same with GNU cpio: names and sizes', () => {
    const { names, sizes } = gnuCpioList(archive);
    expect(names).toEqual(manifest.map((item) => item.path));
    for (const item of manifest) {
      const expected =
        item.type === 'file'
          ? String(item.data.length)
          : item.type === 'symlink'
            ? String(Buffer.byteLength(item.target))
            : item.type === 'chardev'
              ? `${item.major},${item.minor}`
              : '0';
      expect(sizes.get(item.path), item.path).toBe(expected);
    }
  });

  it('strips leading slashes from paths', () => {
    const [record] = parseNewc(writeCpio([{ type: 'dir', path: '/abs', mode: 0o755 }]));
    expect(record?.name).toBe('abs');
  });

  it('pads names by their UTF-8 length, so a non-ASCII name does not shift the next header', () => {
    const entries: CpioEntry[] = [
      { type: 'file', path: 'café', mode: 0o644, data: Buffer.from('abc') },
      { type: 'file', path: 'after', mode: 0o644, data: Buffer.from('abcd') },
    ];
    const unicode = writeCpio(entries);
    expect(parseNewc(unicode).map((record) => record.name)).toEqual(['café', 'after', 'TRAILER!!!']);
    expect(gnuCpioList(unicode).names).toEqual(['café', 'after']);
  });
});

describe('cachedInitramfs', () => {
  const cacheDir = (): string => path.join(scratch(), 'cache');

  it('builds once, then reuses the image for the same inputs', () => {
    const first = cachedInitramfs(fakeInputs('-a'), cacheDir());
    expect(first.built).toBe(true);
    expect(readFileSync(first.path).equals(writeCpio(initramfsManifest(fakeInputs('-a'))))).toBe(true);
    expect(path.basename(first.path)).toMatch(/^initramfs-[0-9a-f]{16}\.cpio$/);

    const second = cachedInitramfs(fakeInputs('-a'), cacheDir());
    expect(second).toEqual({ path: first.path, built: false });
  });

  it('builds a new image when an input changes and removes the old one', () => {
    const old = cachedInitramfs(fakeInputs('-b'), cacheDir());
    writeFileSync(path.join(cacheDir(), 'unrelated.txt'), 'kept');

    const changed = cachedInitramfs(fakeInputs('-c'), cacheDir());
    expect(changed.built).toBe(true);
    expect(changed.path).not.toBe(old.path);
    expect(existsSync(old.path)).toBe(false);
    expect(readdirSync(cacheDir()).sort()).toEqual([path.basename(changed.path), 'unrelated.txt']);
  });

  it("leaves another command's copy in the making alone, and none of its own behind", () => {
    const dir = path.join(scratch(), 'cache-shared');
    mkdirSync(dir, { recursive: true });
    // Another mmapkit in the same checkout, halfway through writing its image.
    const theirs = 'initramfs-0123456789abcdef.cpio.999999.partial';
    writeFileSync(path.join(dir, theirs), 'half');
    const ours = cachedInitramfs(fakeInputs('-d'), dir);
    expect(readdirSync(dir).sort()).toEqual([path.basename(ours.path), theirs].sort());
  });
});
