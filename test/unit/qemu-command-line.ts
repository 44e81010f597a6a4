/**
 * Reading a QEMU argv back the way QEMU and the guest kernel read it, so that
 * the tests of tools/qemu/qemu-args.ts assert what the machine gets (which
 * kernel boots, what is shared read-only, where a device sits) instead of
 * comparing strings copied from the code.
 */
import { expect } from 'vitest';

/** The values given to every occurrence of `option`. */
export function valuesOf(args: string[], option: string): string[] {
  const values: string[] = [];
  args.forEach((arg, index) => {
    if (arg === option) values.push(args[index + 1] ?? '');
  });
  return values;
}

/** The one value of an option that must appear exactly once. */
export function valueOf(args: string[], option: string): string {
  const values = valuesOf(args, option);
  expect(values, `${option} appears once`).toHaveLength(1);
  return values[0] ?? '';
}

/**
 * An option string as QEMU reads it: a single comma separates, a doubled
 * comma is a literal comma. The first bare word (the driver or backend) gets key ''.
 */
export function parseOption(text: string): Map<string, string> {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < text.length; i++) {
    if (text[i] === ',' && text[i + 1] === ',') {
      current += ',';
      i++;
    } else if (text[i] === ',') {
      parts.push(current);
      current = '';
    } else {
      current += text[i];
    }
  }
  parts.push(current);
  return new Map(
    parts.map((part) => {
      const equals = part.indexOf('=');
      return equals < 0 ? ['', part] : [part.slice(0, equals), part.slice(equals + 1)];
    }),
  );
}

/** Every `option` (e.g. -device), parsed. */
export const parsedValuesOf = (args: string[], option: string): Map<string, string>[] => valuesOf(args, option).map(parseOption);

/** The kernel command line as the kernel splits it: words of key=value (a bare word has value ''). */
export function kernelParams(commandLine: string): Map<string, string> {
  const params = new Map<string, string>();
  for (const word of commandLine.split(' ').filter((part) => part !== '')) {
    const equals = word.indexOf('=');
    const key = equals < 0 ? word : word.slice(0, equals);
    expect(params.has(key), `${key} given once on the kernel command line`).toBe(false);
    params.set(key, equals < 0 ? '' : word.slice(equals + 1));
  }
  return params;
}
