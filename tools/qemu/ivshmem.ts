/**
 * The extra devices a profile asks for (profile key `qemuDevices`), made
 * ready for QEMU: ivshmem needs a host file behind its shared memory.
 */
import { closeSync, openSync, truncateSync } from 'node:fs';
import path from 'node:path';
import { IVSHMEM_SIZE, type QemuDevice, type QemuDeviceName } from './qemu-args.js';

export interface SessionDevices {
  devices: QemuDevice[];
  /**
   * With the ivshmem device: the host file behind its shared memory, created
   * empty (all zero) in the run directory for this run and kept with the run,
   * so that the host can check afterwards what the guest wrote.
   */
  ivshmemFile?: string;
}

export function sessionDevices(names: readonly QemuDeviceName[], runDir: string): SessionDevices {
  const unique = [...new Set(names)];
  const ivshmemFile = unique.includes('ivshmem') ? newMemoryFile(runDir) : undefined;
  const devices = unique.map((name): QemuDevice => (name === 'ivshmem' ? { name, memFile: ivshmemFile! } : { name }));
  return { devices, ...(ivshmemFile !== undefined && { ivshmemFile }) };
}

/**
 * A new sparse file of the BAR's size: the guest sees zeroes, and this file is
 * the only host file the device makes guest-writable.
 */
function newMemoryFile(runDir: string): string {
  const file = path.join(runDir, 'ivshmem.mem');
  closeSync(openSync(file, 'wx', 0o600));
  truncateSync(file, IVSHMEM_SIZE);
  return file;
}
