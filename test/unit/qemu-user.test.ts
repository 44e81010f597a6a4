// The user QEMU runs as (tools/qemu/qemu-user.ts): looked up the way -runas looks it up, and the
// same name that tools/setup.sh creates.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../tools/paths.js';
import { QEMU_USER, lookUpUser } from '../../tools/qemu/qemu-user.js';

describe('the QEMU user', () => {
  it('is looked up through NSS: root is uid 0, a name nobody has is not found', () => {
    expect(lookUpUser('root')).toEqual({ name: 'root', uid: 0, gid: 0 });
    expect(lookUpUser('mmapkit-no-such-user')).toBeUndefined();
  });

  it('is the system user make setup creates, without a home or a shell', () => {
    const setup = readFileSync(path.join(REPO_ROOT, 'tools', 'setup.sh'), 'utf8');
    expect(setup).toContain(`QEMU_USER=${QEMU_USER}\n`);
    expect(setup).toMatch(/useradd --system .*--no-create-home .*--shell \/usr\/sbin\/nologin "\$QEMU_USER"/);
  });
});
