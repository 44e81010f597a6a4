/**
 * toEqual on bytes by one memcmp. Vitest compares a Buffer as it compares any
 * iterable, element by element through its generic equality: about 30 ms for
 * a 4 KiB page on this host, longer than the guest takes to read the page,
 * and a conformance case compares many pages (docs/benchmarks.md, "Pages
 * compared by memcmp"). The verdict is toEqual's own: equal bytes of the same
 * class; a failure still prints vitest's diff.
 */
import { expect } from 'vitest';

const isBytes = (value: unknown): value is Uint8Array => value instanceof Uint8Array;

expect.addEqualityTesters([
  function bytesEqual(a: unknown, b: unknown): boolean | undefined {
    if (!isBytes(a) || !isBytes(b)) return undefined;
    // iterableEquality, which this replaces, tells a Buffer from a plain Uint8Array by its constructor.
    return a.constructor === b.constructor && Buffer.compare(a, b) === 0;
  },
]);
