/**
 * A lossless dictionary encoding of a tensor of 4-byte elements with few distinct values: a table
 * of the distinct elements (their bit patterns, so -0, NaN payloads and every float come back
 * exactly) and one uint8 index per element. A normalised 8-bit image has at most 256 distinct
 * floats, so an FP32 [1,3,48,320] line shrinks from 184 KB to 46 KB plus the table before it is
 * written, fsynced and delivered through a quorum queue. task-body.ts uses it; pure.
 */

/** At most this many distinct elements (one uint8 index each). */
export const DICTIONARY_MAX_VALUES = 256;

/** Smaller tensors are not worth the pass over them. */
export const DICTIONARY_MIN_ELEMENTS = 1024;

/** A dictionary-encoded tensor: `table` holds the distinct elements, `indices` one per element. */
export interface DictionaryTensor {
  table: Uint8Array;
  indices: Uint8Array;
}

const SLOTS = 1024; // open addressing, at most a quarter full
const EMPTY = -1;

/**
 * The dictionary encoding of the 4-byte elements in `bytes`, or undefined when it
 * does not pay: fewer than DICTIONARY_MIN_ELEMENTS elements, a length that is not a multiple of 4,
 * or more than DICTIONARY_MAX_VALUES distinct elements (found as soon as the 257th turns up).
 */
export function dictionaryEncode(bytes: Uint8Array): DictionaryTensor | undefined {
  if (bytes.byteLength % 4 !== 0 || bytes.byteLength / 4 < DICTIONARY_MIN_ELEMENTS) return undefined;
  const words = wordsOf(bytes);
  const keys = new Int32Array(SLOTS);
  const slotIndex = new Int16Array(SLOTS).fill(EMPTY);
  const values = new Int32Array(DICTIONARY_MAX_VALUES);
  const indices = new Uint8Array(words.length);
  let count = 0;
  // Images come in runs of equal pixels: the previous element's index answers most look-ups.
  let last = words[0]! ^ 1;
  let lastIndex = 0;
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (word === last) {
      indices[i] = lastIndex;
      continue;
    }
    let slot = Math.imul(word, 0x9e3779b1) >>> 22; // top 10 bits: 0..1023
    let index = slotIndex[slot]!;
    while (index !== EMPTY && keys[slot] !== word) {
      slot = (slot + 1) & (SLOTS - 1);
      index = slotIndex[slot]!;
    }
    if (index === EMPTY) {
      if (count === DICTIONARY_MAX_VALUES) return undefined;
      index = count++;
      keys[slot] = word;
      slotIndex[slot] = index;
      values[index] = word;
    }
    indices[i] = index;
    last = word;
    lastIndex = index;
  }
  const table = new Uint8Array(values.buffer, 0, count * 4);
  return { table, indices };
}

/** The values of a dictionary's `table` (4-byte elements). Throws RangeError on a ragged table. */
export function dictionaryValues(table: Uint8Array): Int32Array {
  if (table.byteLength % 4 !== 0) throw new RangeError(`a dictionary of ${table.byteLength} bytes`);
  const values = new Int32Array(table.byteLength / 4);
  new Uint8Array(values.buffer).set(table);
  return values;
}

/** Throws RangeError on the first of `indices` past a dictionary of `size` values. */
export function checkDictionaryIndices(indices: Uint8Array, size: number): void {
  for (let i = 0; i < indices.length; i++) {
    const index = indices[i]!;
    if (index >= size) throw new RangeError(`index ${index} at element ${i}, the dictionary has ${size}`);
  }
}

/**
 * The plain bytes of a dictionary-encoded tensor: `table` holds `table.length / 4`
 * elements, `indices` one index per element. Throws RangeError on an index past the table.
 */
export function dictionaryDecode(table: Uint8Array, indices: Uint8Array): Uint8Array {
  const values = dictionaryValues(table);
  checkDictionaryIndices(indices, values.length);
  const out = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) out[i] = values[indices[i]!]!;
  return new Uint8Array(out.buffer);
}

/**
 * An Int32Array over `bytes` (copied when they do not start on a 4-byte boundary). Elements are
 * compared, stored and written back as whole 4-byte groups, so the host's byte order never matters.
 */
function wordsOf(bytes: Uint8Array): Int32Array {
  if (bytes.byteOffset % 4 === 0) return new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  // Not bytes.slice(): on a Node Buffer (a binary request body) that is a view, not a copy.
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return new Int32Array(copy.buffer);
}
