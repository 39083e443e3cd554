/**
 * The one codec of InferenceTask message bodies (the framing is {@link TASK_FRAME}): the gateway
 * and a worker publishing a pipeline's next step write them, the worker and the collector (dead
 * tasks) read them. A task whose tensors carry raw bytes is framed as a small JSON header plus the
 * bytes, so nobody encodes, stores, fsyncs or decodes base64 for them (a tensor of few distinct
 * 4-byte values, such as a normalised image, as a dictionary: a quarter of the bytes); any other
 * task, and any body in the older all-JSON form, is plain JSON. Pure.
 */
import { TASK_FRAME, type InferenceTask, type WireTensor } from "./contracts/index.js";
import {
  checkDictionaryIndices,
  DICTIONARY_MAX_VALUES,
  dictionaryDecode,
  dictionaryEncode,
} from "./tensor-dictionary.js";

/** A message body encoded ahead of publishing (publishJson sends it as it is). */
export class EncodedBody {
  constructor(
    readonly content: Buffer,
    readonly contentType: string,
  ) {}
}

/** A task body that cannot be read; `header` is the JSON header when that much was readable. */
export class TaskBodyError extends Error {
  constructor(
    message: string,
    readonly header?: unknown,
  ) {
    super(message);
    this.name = "TaskBodyError";
  }
}

const MAGIC = Buffer.from(TASK_FRAME.magic, "latin1");
const PREFIX = MAGIC.length + 4;

/** The body of `task`: framed when an input carries raw bytes, else the JSON of the task. */
export function encodeTaskBody(task: InferenceTask): EncodedBody {
  if (!task.inputs.some((t) => t.data instanceof Uint8Array)) {
    return new EncodedBody(Buffer.from(JSON.stringify(task)), "application/json");
  }
  const parts: Uint8Array[] = [];
  const inputs = task.inputs.map((t) => {
    if (!(t.data instanceof Uint8Array)) return t;
    const { data, ...header } = t;
    const dictionary = WORD_TYPES.has(t.datatype) ? dictionaryEncode(data) : undefined;
    if (!dictionary) {
      parts.push(data);
      return { ...header, [TASK_FRAME.sizeKey]: data.byteLength };
    }
    parts.push(dictionary.table, dictionary.indices);
    return {
      ...header,
      [TASK_FRAME.sizeKey]: dictionary.table.byteLength + dictionary.indices.byteLength,
      [TASK_FRAME.dictionaryKey]: dictionary.table.byteLength / 4,
    };
  });
  const header = Buffer.from(JSON.stringify({ ...task, inputs }));
  const prefix = Buffer.allocUnsafe(PREFIX);
  MAGIC.copy(prefix);
  prefix.writeUInt32LE(header.length, MAGIC.length);
  return new EncodedBody(Buffer.concat([prefix, header, ...parts]), TASK_FRAME.contentType);
}

/** Datatypes of 4-byte elements: the ones a dictionary of uint8 indices may carry. */
const WORD_TYPES = new Set<WireTensor["datatype"]>(["FP32", "INT32"]);

/**
 * Reads a task body of either form into the object the task schema checks (raw tensors get their
 * bytes back as `data`, views of `body`). Throws TaskBodyError when the framing is broken.
 * With `keepDictionaries`, a dictionary-encoded tensor's `data` is its uint8 indices (one per
 * element, checked against the table) and {@link keptDictionary} gives its table: the reader expands
 * it where the values are needed (the worker: straight into the batch), not on arrival.
 */
export function decodeTaskBody(body: Buffer, options: { keepDictionaries?: boolean } = {}): unknown {
  if (!isFramed(body)) return parseJson(body, "message body");
  const header = readHeader(body);
  const inputs = (header as { inputs?: unknown }).inputs;
  if (!Array.isArray(inputs)) return header;
  let offset = PREFIX + body.readUInt32LE(MAGIC.length);
  const attached = inputs.map((input: unknown, i) => {
    if (typeof input !== "object" || input === null || !(TASK_FRAME.sizeKey in input)) return input;
    const { [TASK_FRAME.sizeKey]: size, ...rest } = input as Record<string, unknown>;
    if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
      throw new TaskBodyError(`task header: inputs.${i}.${TASK_FRAME.sizeKey} is not a byte count`, header);
    }
    if (offset + size > body.length) {
      throw new TaskBodyError(
        `task header: inputs.${i} needs ${size} bytes at offset ${offset}, the body has ${body.length}`,
        header,
      );
    }
    const bytes = body.subarray(offset, offset + size);
    offset += size;
    if (!(TASK_FRAME.dictionaryKey in rest)) return { ...rest, data: bytes };
    const { [TASK_FRAME.dictionaryKey]: values, ...plain } = rest;
    if (options.keepDictionaries)
      return { ...plain, data: keepDictionary(bytes, values, `inputs.${i}`, header) };
    return { ...plain, data: undictionary(bytes, values, `inputs.${i}`, header) };
  });
  if (offset !== body.length) {
    throw new TaskBodyError(
      `task header: the tensors take ${offset} bytes, the body has ${body.length}`,
      header,
    );
  }
  return { ...header, inputs: attached };
}

/** Tables of the dictionary tensors decodeTaskBody kept, by their indices array. */
const kept = new WeakMap<Uint8Array, Uint8Array>();

/**
 * The table (4-byte elements) of a tensor whose `data` decodeTaskBody left as dictionary indices
 * (`keepDictionaries`), else undefined.
 */
export function keptDictionary(data: Uint8Array): Uint8Array | undefined {
  return kept.get(data);
}

/** The indices of a dictionary-encoded tensor, checked against its table, which is kept aside. */
function keepDictionary(bytes: Buffer, values: unknown, where: string, header: object): Uint8Array {
  checkTable(bytes, values, where, header);
  const size = values as number;
  const indices = bytes.subarray(size * 4);
  try {
    checkDictionaryIndices(indices, size);
  } catch (error) {
    throw new TaskBodyError(`task body: ${where}: ${(error as Error).message}`, header);
  }
  kept.set(indices, bytes.subarray(0, size * 4));
  return indices;
}

/** The plain bytes of a dictionary-encoded tensor (`values` 4-byte elements, then the indices). */
function undictionary(bytes: Buffer, values: unknown, where: string, header: object): Uint8Array {
  checkTable(bytes, values, where, header);
  try {
    return dictionaryDecode(
      bytes.subarray(0, (values as number) * 4),
      bytes.subarray((values as number) * 4),
    );
  } catch (error) {
    throw new TaskBodyError(`task body: ${where}: ${(error as Error).message}`, header);
  }
}

function checkTable(bytes: Buffer, values: unknown, where: string, header: object): void {
  if (
    typeof values !== "number" ||
    !Number.isInteger(values) ||
    values < 1 ||
    values > DICTIONARY_MAX_VALUES ||
    values * 4 > bytes.length
  ) {
    throw new TaskBodyError(
      `task header: ${where}.${TASK_FRAME.dictionaryKey} is not a table of 1-${DICTIONARY_MAX_VALUES} ` +
        `elements within its ${bytes.length} bytes`,
      header,
    );
  }
}

/** The task's JSON fields without its raw tensor bytes (the collector's dead-task record needs no more). */
export function readTaskHeader(body: Buffer): unknown {
  return isFramed(body) ? readHeader(body) : parseJson(body, "message body");
}

function isFramed(body: Buffer): boolean {
  return body.length >= MAGIC.length && body.subarray(0, MAGIC.length).equals(MAGIC);
}

function readHeader(body: Buffer): object {
  if (body.length < PREFIX) throw new TaskBodyError(`task body of ${body.length} bytes is cut short`);
  const length = body.readUInt32LE(MAGIC.length);
  if (length > body.length - PREFIX) {
    throw new TaskBodyError(`task header of ${length} bytes runs past the body's ${body.length}`);
  }
  const header = parseJson(body.subarray(PREFIX, PREFIX + length), "task header");
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    throw new TaskBodyError("task header is not a JSON object");
  }
  return header;
}

function parseJson(bytes: Buffer, what: string): unknown {
  try {
    return JSON.parse(bytes.toString("utf8"));
  } catch (error) {
    throw new TaskBodyError(`${what} is not JSON: ${(error as Error).message}`);
  }
}
