// How a session ended (tools/qemu/outcome.ts), from what the console shows
// (tools/qemu/console.ts). The consoles are recorded guest logs in
// test/fixtures/console/, replayed here without a VM.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ExitCode } from '../../tools/exit-codes.js';
import {
  consoleLines,
  crashExcerpt,
  FATAL_KINDS,
  type Finding,
  findings,
  initFailure,
  tail,
} from '../../tools/qemu/console.js';
import { classifyEnd, EXIT_CODE_OF, type SessionFacts } from '../../tools/qemu/outcome.js';

type Fixture = 'clean-boot' | 'panic-sysrq' | 'oops-null-deref' | 'hang-early-boot';

/** The console lines of a recorded log (they were captured with \r\n line ends). */
function recorded(name: Fixture): string[] {
  const text = readFileSync(new URL(`../fixtures/console/${name}.log`, import.meta.url), 'utf8');
  expect(text, `${name}.log is a raw serial capture`).toContain('\r\n');
  return consoleLines(text);
}

/** Session facts for a console; the rest describes a normal, requested stop. */
function facts(lines: string[], overrides: Partial<SessionFacts> = {}): SessionFacts {
  return {
    agentReady: true,
    stopRequested: true,
    consoleLines: lines,
    consoleFindings: findings(lines),
    qemuExit: { code: 0, signal: null },
    ...overrides,
  };
}

const kinds = (found: Finding[]): string[] => found.map((finding) => finding.kind);
const fatal = (found: Finding[]): Finding[] => found.filter((finding) => FATAL_KINDS.has(finding.kind));

describe('consoleLines', () => {
  it('strips carriage returns and terminal escapes', () => {
    expect(consoleLines('\x1bc\x1b[2J\x1b[?7lSeaBIOS\r\n[    0.1] hello\r\nlast')).toEqual([
      'SeaBIOS',
      '[    0.1] hello',
      'last',
    ]);
  });

  it('leaves no \\r in a recorded log', () => {
    const lines = recorded('clean-boot');
    expect(lines.some((line) => line.includes('\r'))).toBe(false);
    expect(lines[0]).toBe('[    0.540853] mtrr: your CPUs had inconsistent fixed MTRR settings');
  });
});

describe('findings', () => {
  it('finds nothing in a clean boot: the mtrr and unstable-clock notices are harmless', () => {
    const lines = recorded('clean-boot');
    expect(lines.some((line) => line.includes('mtrr: your CPUs had inconsistent'))).toBe(true);
    expect(lines.some((line) => line.includes('Unstable clock detected'))).toBe(true);
    expect(findings(lines)).toEqual([]);
  });

  it('finds the sysrq panic, without its timestamp, at its line index', () => {
    const lines = recorded('panic-sysrq');
    const found = findings(lines);
    expect(kinds(found)).toEqual(['panic']);
    expect(found[0]?.line).toBe('Kernel panic - not syncing: sysrq triggered crash');
    expect(lines[found[0]?.index ?? -1]).toContain('Kernel panic - not syncing');
  });

  it('finds the BUG, the oops and the panic it became in the NULL dereference log', () => {
    const found = findings(recorded('oops-null-deref'));
    expect(kinds(found)).toEqual(['bug', 'oops', 'panic']);
    expect(found.find((finding) => finding.kind === 'oops')?.line).toMatch(/^Oops: 0002 /);
    expect(found[0]?.line).toMatch(/^BUG: kernel NULL pointer dereference/);
    expect(fatal(found)).toHaveLength(3);
  });

  it('finds nothing in a log that just stops', () => {
    expect(findings(recorded('hang-early-boot'))).toEqual([]);
  });

  it('classifies single lines', () => {
    const kindOf = (line: string): string[] => kinds(findings([line]));
    expect(kindOf('[   12.345678] WARNING: CPU: 0 PID: 1 at mm/memory.c:123 foo+0x1/0x2')).toEqual(['warning']);
    expect(kindOf('[    3.000000] BUG: Bad page map in process x  pte:800000 pmd:1234')).toEqual(['bad-page']);
    expect(kindOf('BUG: Bad page state in process y  pfn:01234')).toEqual(['bad-page']);
    expect(kindOf('BUG: Bad rss-counter state mm:0000 type:MM_FILEPAGES val:1')).toEqual(['bad-page']);
    expect(kindOf('BUG: unable to handle page fault for address: ffff888000000000')).toEqual(['oops']);
    expect(kindOf('general protection fault, probably for non-canonical address 0xdead: 0000 [#1]')).toEqual(['oops']);
    expect(kindOf('kernel BUG at mm/mmap.c:42!')).toEqual(['bug']);
    expect(kindOf('oops: loading out-of-tree module taints kernel.')).toEqual([]);
    expect(kindOf('mmapkit-init: agent exited with status 0')).toEqual([]);
  });

  it('treats warnings and bad pages as findings that do not end the guest', () => {
    expect(FATAL_KINDS.has('warning')).toBe(false);
    expect(FATAL_KINDS.has('bad-page')).toBe(false);
    expect([...FATAL_KINDS].sort()).toEqual(['bug', 'oops', 'panic']);
  });
});

describe('crashExcerpt', () => {
  it('starts at or just before the first fatal line and reaches the call trace', () => {
    const lines = recorded('oops-null-deref');
    const found = findings(lines);
    const first = fatal(found)[0];
    const excerpt = crashExcerpt(lines, found);
    const start = lines.indexOf(excerpt[0] ?? '');
    expect(start).toBeGreaterThanOrEqual((first?.index ?? 0) - 2);
    expect(start).toBeLessThanOrEqual(first?.index ?? -1);
    expect(excerpt.some((line) => line.includes('BUG: kernel NULL pointer dereference'))).toBe(true);
    expect(excerpt.some((line) => line.includes('Call Trace:'))).toBe(true);
    expect(excerpt.length).toBeLessThanOrEqual(40);
  });

  it('includes the call trace of the sysrq panic', () => {
    const lines = recorded('panic-sysrq');
    const excerpt = crashExcerpt(lines, findings(lines));
    expect(excerpt.some((line) => line.includes('Kernel panic - not syncing: sysrq triggered crash'))).toBe(true);
    expect(excerpt.some((line) => line.includes('Call Trace:'))).toBe(true);
  });

  it('respects its cap and the start of the log', () => {
    const lines = recorded('oops-null-deref');
    expect(crashExcerpt(lines, findings(lines), 5)).toHaveLength(5);
    const atTop = ['Kernel panic - not syncing: early', 'next'];
    expect(crashExcerpt(atTop, findings(atTop))).toEqual(atTop);
  });

  it('is empty without a fatal finding', () => {
    const lines = ['WARNING: CPU: 0 PID: 1 at mm/memory.c:123 foo+0x1/0x2', 'more'];
    expect(crashExcerpt(lines, findings(lines))).toEqual([]);
    expect(crashExcerpt(recorded('clean-boot'), [])).toEqual([]);
  });
});

describe('initFailure', () => {
  it("returns init's FATAL line without the prefix", () => {
    const lines = consoleLines('[    1.0] booting\r\nmmapkit-init: FATAL: cannot mount the host root over 9p\r\n');
    expect(initFailure(lines)).toBe('FATAL: cannot mount the host root over 9p');
  });

  it('is undefined when init did not fail', () => {
    expect(initFailure(recorded('clean-boot'))).toBeUndefined();
  });
});

describe('tail', () => {
  it('drops trailing blank lines, then keeps the last lines', () => {
    expect(tail(['a', 'b', 'c', '', '  '], 2)).toEqual(['b', 'c']);
    expect(tail(recorded('clean-boot')).at(-1)).toContain('reboot: Power down');
  });
});

describe('classifyEnd', () => {
  it('reports a clean boot and a requested stop as completed', () => {
    const end = classifyEnd(facts(recorded('clean-boot')));
    expect(end.state).toBe('completed');
  });

  it('still completes when the console only has a warning', () => {
    const lines = ['[    5.0] WARNING: CPU: 0 PID: 1 at mm/memory.c:123 foo+0x1/0x2'];
    expect(classifyEnd(facts(lines)).state).toBe('completed');
  });

  it('reports a panic after the agent came up as a guest crash naming the panic', () => {
    const end = classifyEnd(facts(recorded('panic-sysrq'), { stopRequested: false }));
    expect(end.state).toBe('guest-crashed');
    expect(end.reason).toContain('sysrq triggered crash');
  });

  it('reports the same panic before the agent came up as a failed boot', () => {
    const end = classifyEnd(facts(recorded('panic-sysrq'), { agentReady: false, stopRequested: false }));
    expect(end.state).toBe('boot-failed');
    expect(end.reason).toContain('sysrq triggered crash');
  });

  it('names the first fatal line of an oops', () => {
    const end = classifyEnd(facts(recorded('oops-null-deref'), { stopRequested: false }));
    expect(end.state).toBe('guest-crashed');
    expect(end.reason).toContain('BUG: kernel NULL pointer dereference');
    expect(end.reason).not.toContain('Fatal exception');
  });

  it('reports a crash as a crash even when a deadline fired too', () => {
    const end = classifyEnd(facts(recorded('panic-sysrq'), { stopRequested: false, deadline: 'request', deadlineSeconds: 10 }));
    expect(end.state).toBe('guest-crashed');
  });

  it('reports a boot that hangs past its deadline as a failed boot, with the seconds', () => {
    const end = classifyEnd(
      facts(recorded('hang-early-boot'), { agentReady: false, stopRequested: false, deadline: 'boot', deadlineSeconds: 45, qemuExit: undefined }),
    );
    expect(end.state).toBe('boot-failed');
    expect(end.reason).toMatch(/\b45 s\b/);
  });

  it.each(['request', 'run'] as const)('reports the %s deadline after ready as timed out', (deadline) => {
    const end = classifyEnd(
      facts(recorded('clean-boot'), { stopRequested: false, deadline, deadlineSeconds: 17, qemuExit: undefined }),
    );
    expect(end.state).toBe('timed-out');
    expect(end.reason).toMatch(/\b17 s\b/);
  });

  it('reports QEMU exiting on its own after ready, with no finding, as a guest crash', () => {
    const end = classifyEnd(facts(recorded('clean-boot'), { stopRequested: false }));
    expect(end.state).toBe('guest-crashed');
    expect(end.reason).toContain('stopped unexpectedly');
  });

  it("reports QEMU exiting before ready as a failed boot, quoting QEMU's last stderr line", () => {
    const end = classifyEnd(
      facts(recorded('hang-early-boot'), {
        agentReady: false,
        stopRequested: false,
        qemuExit: { code: 1, signal: null },
        qemuStderr: 'qemu-system-x86_64: warning: first line\nqemu-system-x86_64: -virtfs local: cannot open /nope\n\n',
      }),
    );
    expect(end.state).toBe('boot-failed');
    expect(end.reason).toContain('qemu-system-x86_64: -virtfs local: cannot open /nope');
    expect(end.reason).not.toContain('first line');
  });

  it('describes the exit status or signal when QEMU printed nothing', () => {
    const notReady = { agentReady: false, stopRequested: false, qemuStderr: '' };
    expect(classifyEnd(facts([], { ...notReady, qemuExit: { code: 1, signal: null } })).reason).toContain('status 1');
    expect(classifyEnd(facts([], { ...notReady, qemuExit: { code: null, signal: 'SIGKILL' } })).reason).toContain(
      'SIGKILL',
    );
  });

  it("uses init's FATAL line as the reason when the guest powers off before ready", () => {
    const lines = consoleLines('[    1.2] 9pnet: Installing 9P2000 support\r\nmmapkit-init: FATAL: cannot mount the host root over 9p\r\n');
    const end = classifyEnd(
      facts(lines, { agentReady: false, stopRequested: false, qemuStderr: 'qemu: something else' }),
    );
    expect(end).toEqual({ state: 'boot-failed', reason: 'FATAL: cannot mount the host root over 9p' });
    const atDeadline = classifyEnd(facts(lines, { agentReady: false, stopRequested: false, deadline: 'boot', deadlineSeconds: 30 }));
    expect(atDeadline.reason).toBe('FATAL: cannot mount the host root over 9p');
  });
});

describe('EXIT_CODE_OF', () => {
  it('maps each failed end state to its own exit code', () => {
    expect(EXIT_CODE_OF['guest-crashed']).toBe(120);
    expect(EXIT_CODE_OF['boot-failed']).toBe(121);
    expect(EXIT_CODE_OF['timed-out']).toBe(124);
  });

  it('uses codes distinct from each other and from pass, test failure, usage and setup', () => {
    const codes = Object.values(EXIT_CODE_OF);
    expect(new Set(codes).size).toBe(3);
    for (const reserved of [ExitCode.PASSED, ExitCode.TESTS_FAILED, ExitCode.USAGE, ExitCode.SETUP, 0, 1, 2, 3]) {
      expect(codes).not.toContain(reserved);
    }
  });
});
