import { expect, it } from 'vitest';
import '../byte-equality.js';

it('bytes are equal by content, whatever their size', () => {
  const page = Buffer.alloc(4096, 0x5a);
  expect(page).toEqual(Buffer.from(page));
  expect({ page }).toEqual({ page: Buffer.from(page) });
  expect(page).not.toEqual(Buffer.concat([page.subarray(0, 4095), Buffer.from([0x5b])]));
  expect(page).not.toEqual(page.subarray(0, 4095));
});

it('a Buffer is not a plain Uint8Array, as for toEqual without the tester', () => {
  expect(Buffer.from('ab')).not.toEqual(new Uint8Array([0x61, 0x62]));
  expect(new Uint8Array([1, 2])).toEqual(new Uint8Array([1, 2]));
});

it('a failed comparison still says which bytes differ', () => {
  expect(() => expect(Buffer.from('ab')).toEqual(Buffer.from('ac'))).toThrow(/Buffer\[ 97, 98 \] to deeply equal Buffer\[ 97, 99 \]/);
});
