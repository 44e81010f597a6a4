/**
 * The identity QEMU runs as. Started by root, QEMU opens what it needs (the
 * kernel, the initramfs, the shared directories' roots, the agent socket, the
 * ivshmem file, /dev/kvm) and then becomes QEMU_USER (`-runas`) before the
 * guest runs a single instruction, so that a guest which breaks out of QEMU
 * lands as a user that owns nothing but the run's out/ directory. Started by
 * anyone else, QEMU is that unprivileged user already.
 */
import { spawnSync } from 'node:child_process';
import { SetupError } from '../exit-codes.js';

/** The system user tools/setup.sh creates for QEMU (no home, no shell, no other files). */
export const QEMU_USER = 'mmapkit-qemu';

export interface QemuIdentity {
  name: string;
  uid: number;
  gid: number;
}

/** QEMU_USER's ids, through NSS as `-runas` looks them up (getpwnam). */
export function lookUpUser(name: string): QemuIdentity | undefined {
  const result = spawnSync('getent', ['passwd', name], { encoding: 'utf8' });
  const [, , uid, gid] = result.status === 0 ? result.stdout.trim().split(':') : [];
  return uid !== undefined && gid !== undefined ? { name, uid: Number(uid), gid: Number(gid) } : undefined;
}

/** The user QEMU should become, or undefined when this process is not root (QEMU runs as its user). */
export function qemuIdentity(): QemuIdentity | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const identity = lookUpUser(QEMU_USER);
  if (identity === undefined) throw new SetupError(`QEMU runs as the system user ${QEMU_USER}, which does not exist: run \`make setup\``);
  if (identity.uid === 0) throw new SetupError(`the user ${QEMU_USER} has uid 0: QEMU must run unprivileged`);
  return identity;
}
