/** What the user sees at the end of a run: one-line reasons, then the console lines that explain them. */
import { readFileSync } from 'node:fs';
import { ExitCode } from '../exit-codes.js';
import { MAIN_USAGE } from '../paths.js';
import type { Finding } from '../qemu/console.js';
import { crashExcerpt, tail } from '../qemu/console.js';
import type { SessionEnd } from '../qemu/outcome.js';
import type { VmSession } from '../qemu/session.js';

export const say = (line: string): void => {
  process.stderr.write(`mmapkit: ${line}\n`);
};

/** After any end but a clean one: the reason, and the console lines that explain it. */
/** A command's --help: its text on stdout, exit 0. */
export function printHelp(text: string): number {
  process.stdout.write(`${text}\n`);
  return ExitCode.PASSED;
}

/** `mmapkit --help` (and `vm` alone): the usage file, plain text, so that bin/mmapkit.js can print it before `make setup` too. */
export const printMainHelp = (): number => printHelp(readFileSync(MAIN_USAGE, 'utf8').trimEnd());

export function reportEnd(end: SessionEnd, session: VmSession): void {
  say(end.reason);
  const lines = session.lines();
  const excerpt = end.state === 'guest-crashed' ? crashExcerpt(lines, session.findings()) : [];
  printConsoleLines(excerpt.length > 0 ? excerpt : tail(lines, 30), session);
}

/** The guest console's last lines, for failures the guest itself survived. */
export function printConsoleTail(session: VmSession, count = 20): void {
  printConsoleLines(tail(session.lines(), count), session);
}

function printConsoleLines(lines: string[], session: VmSession): void {
  process.stderr.write(`--- last console lines (full log: ${session.consoleLog}) ---\n`);
  process.stderr.write(lines.map((line) => `  ${line}\n`).join(''));
}

export function describeFindings(found: Finding[]): string {
  if (found.length === 0) return 'none';
  return found.map((finding) => `${finding.kind}: ${finding.line}`).join('; ');
}
