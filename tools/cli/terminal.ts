/**
 * Whether output may use colour and rewrite its own line: only on a terminal,
 * so that a log file or a pipe gets plain lines. NO_COLOR (https://no-color.org)
 * turns colour off, FORCE_COLOR turns it on (FORCE_COLOR=0 off), as most tools do.
 */
import type { Writable } from 'node:stream';

function isTerminal(stream: Writable, env: NodeJS.ProcessEnv = process.env): boolean {
  return (stream as { isTTY?: boolean }).isTTY === true && env.TERM !== 'dumb';
}

export function colourEnabled(stream: Writable, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR !== undefined) return env.FORCE_COLOR !== '0' && env.FORCE_COLOR !== 'false';
  return isTerminal(stream, env);
}

/** A line updated in place (`\r`, erase line) needs a terminal; colour settings do not change that. */
export const rewritesLines = isTerminal;

/**
 * Vitest's reporters colour their output even into a pipe (tinyrainbow looks at
 * NO_COLOR and FORCE_COLOR, not at the stream): when stdout should stay plain,
 * say so before vitest is loaded, in the form it honours.
 */
export function plainVitestOutput(): void {
  if (!colourEnabled(process.stdout)) {
    process.env.NO_COLOR = '1';
    delete process.env.FORCE_COLOR;
  }
}

export interface Paint {
  red(text: string): string;
  green(text: string): string;
  yellow(text: string): string;
  dim(text: string): string;
  bold(text: string): string;
}

const sgr = (open: number, close: number) => (text: string) => `\x1b[${open}m${text}\x1b[${close}m`;
const plain = (text: string): string => text;

export function paint(colour: boolean): Paint {
  if (!colour) return { red: plain, green: plain, yellow: plain, dim: plain, bold: plain };
  return { red: sgr(31, 39), green: sgr(32, 39), yellow: sgr(33, 39), dim: sgr(2, 22), bold: sgr(1, 22) };
}
