/**
 * A fast path for large OIP JSON tensor bodies: each long flat array of plain numbers that is the
 * value of a `"data"` key is read straight from the body's bytes into a reused buffer of doubles,
 * and replaced by a placeholder string before JSON.parse sees the rest; once it is parsed, an
 * input's FP32 or FP64 data becomes its typed array at once (one allocation, no JS array to
 * convert or collect). An OCR line as FP32 [1,3,48,320] is 46,080 numbers in 131 KB: JSON.parse
 * of it takes ~1.5 ms; reading the numbers here takes about half, and less garbage is left.
 *
 * Nothing changes in what is accepted or refused: a run is lifted only if every element is a JSON
 * number by the JSON grammar (anything else, e.g. a nested array, a string or `NaN`, leaves the
 * array to JSON.parse and its usual errors), and each value is the double JSON.parse would give
 * (Clinger's exact fast path). A number outside that path (more than 15 significant digits, as
 * numpy's float32 `tolist()` writes them, or an exponent) leaves the whole body to JSON.parse:
 * reading such numbers here was slower than JSON.parse (a 911 KB body of random floats: 12.6
 * against 7.6 ms), so giving up at the first one costs at most the bytes scanned so far. The rest
 * of the body still goes through the secure JSON parser (prototype keys refused).
 */
import { randomBytes } from "node:crypto";

/** Arrays shorter than this (in bytes of JSON) stay with JSON.parse. */
const MIN_RUN_BYTES = 4096;
/** Bodies smaller than this are not scanned at all. */
export const MIN_LIFT_BODY_BYTES = 16 * 1024;

// A per-process random placeholder: a caller cannot forge one in its own strings.
const PLACEHOLDER = `turnpike-number-run-${randomBytes(16).toString("hex")}-`;

const POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const OPEN = 0x5b;
const CLOSE = 0x5d;
const COMMA = 0x2c;
const MINUS = 0x2d;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const LOWER_E = 0x65;
const UPPER_E = 0x45;
const DATA = Buffer.from("data");

const isSpace = (b: number) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
// Past the end raw[i] is undefined, which no comparison passes.
const isDigit = (b: number) => b >= ZERO && b <= NINE;

/** Where a lifted array's values are in the shared buffer. */
interface Run {
  start: number;
  count: number;
}

/** The body's text with its long number arrays replaced by placeholders, and where those are. */
export interface LiftedBody {
  text: string;
  runs: Run[];
}

/**
 * Lifts the long `"data": [numbers]` arrays out of a JSON body (undefined when there are none).
 * The values stay in a buffer shared by every call: restore them (restoreNumberRuns) before the
 * next body is lifted, in the same synchronous turn.
 */
export function liftNumberRuns(raw: Buffer): LiftedBody | undefined {
  if (scratchValues.length > MAX_KEPT_VALUES) scratchValues = new Float64Array(0);
  const runs: Run[] = [];
  const parts: string[] = [];
  let used = 0;
  let copied = 0;
  let inString = false;
  let stringStart = -1;
  let stringEnd = -1;
  let lastSignificant = -1;
  let afterDataKey = false;
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i]!;
    if (inString) {
      if (b === BACKSLASH) i++;
      else if (b === QUOTE) {
        inString = false;
        stringEnd = i;
        lastSignificant = i;
      }
      continue;
    }
    if (isSpace(b)) continue;
    if (b === QUOTE) {
      inString = true;
      stringStart = i + 1;
    } else if (b === COLON) {
      afterDataKey =
        lastSignificant === stringEnd &&
        stringEnd - stringStart === DATA.length &&
        raw.compare(DATA, 0, DATA.length, stringStart, stringEnd) === 0;
    } else if (b === OPEN && afterDataKey && raw[lastSignificant] === COLON) {
      const run = readRun(raw, i, used);
      if (run === INEXACT) return undefined;
      if (run && run.end - i >= MIN_RUN_BYTES) {
        parts.push(raw.toString("utf8", copied, i), `"${PLACEHOLDER}${runs.length}"`);
        runs.push({ start: used, count: run.count });
        used += run.count;
        copied = run.end;
        i = run.end - 1;
        lastSignificant = i;
        afterDataKey = false;
        continue;
      }
    }
    lastSignificant = i;
  }
  if (runs.length === 0) return undefined;
  parts.push(raw.toString("utf8", copied));
  return { text: parts.join(""), runs };
}

/**
 * Puts the lifted arrays back into the parsed body: an input's FP32 or FP64 `data` as its typed
 * array (JSON has no NaN, so nothing a check would refuse is hidden), anything else as the plain
 * number array JSON.parse would have given, so every check and message downstream stays the same.
 */
export function restoreNumberRuns(body: unknown, lifted: LiftedBody): unknown {
  const values = scratchValues;
  const runOf = (value: unknown): Run | undefined => {
    if (typeof value !== "string" || !value.startsWith(PLACEHOLDER)) return undefined;
    return lifted.runs[Number(value.slice(PLACEHOLDER.length))];
  };
  const plain = (run: Run) => Array.from(values.subarray(run.start, run.start + run.count));
  let restored = 0;
  const inputs = isObject(body) && Array.isArray(body.inputs) ? body.inputs : [];
  for (const input of inputs) {
    const run = isObject(input) ? runOf(input.data) : undefined;
    if (!run || !isObject(input)) continue;
    const view = values.subarray(run.start, run.start + run.count);
    input.data =
      input.datatype === "FP32"
        ? new Float32Array(view)
        : input.datatype === "FP64"
          ? view.slice()
          : plain(run);
    restored++;
  }
  // Elsewhere (rare: e.g. a parameter named data): an iterative walk, so no depth can overflow.
  const stack: unknown[] = restored < lifted.runs.length ? [body] : [];
  while (stack.length > 0) {
    const node = stack.pop();
    if (!isObject(node) && !Array.isArray(node)) continue;
    const entries = node as Record<string, unknown>;
    for (const key of Object.keys(entries)) {
      const run = runOf(entries[key]);
      if (run) entries[key] = plain(run);
      else if (typeof entries[key] === "object" && entries[key] !== null) stack.push(entries[key]);
    }
  }
  if (scratchValues.length > MAX_KEPT_VALUES) scratchValues = new Float64Array(0);
  return body;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value);
}

let scratchValues = new Float64Array(0);
/** Values kept for reuse between bodies: an 8 MB buffer at most (a larger one is let go). */
const MAX_KEPT_VALUES = 1 << 20;

/** The shared buffer with room for `length` values from `used` on (its values up to `used` kept). */
function scratch(used: number, length: number): Float64Array {
  if (scratchValues.length >= used + length) return scratchValues;
  const values = new Float64Array(used + length);
  values.set(scratchValues.subarray(0, used));
  scratchValues = values;
  return values;
}

/** readRun's answer for a number it cannot read exactly: the body is better left to JSON.parse. */
const INEXACT = "inexact";

/**
 * Reads `[n, n, ...]` from `start` (the `[`) into the shared buffer from `used` on; undefined
 * unless every element is a JSON number, INEXACT at the first number outside the exact fast path.
 */
function readRun(
  raw: Buffer,
  start: number,
  used: number,
): { count: number; end: number } | undefined | typeof INEXACT {
  // Each element takes at least two bytes with its comma.
  const values = scratch(used, Math.ceil((raw.length - start) / 2));
  let count = used;
  let i = start + 1;
  while (i < raw.length && isSpace(raw[i]!)) i++;
  if (raw[i] === CLOSE) return undefined;
  for (;;) {
    let negative = false;
    if (raw[i] === MINUS) {
      negative = true;
      i++;
    }
    // Integer part: 0, or a digit 1-9 and more digits.
    if (!isDigit(raw[i]!)) return undefined;
    let mantissa = 0;
    let digits = 0;
    let fraction = 0;
    if (raw[i] === ZERO) {
      i++;
      if (isDigit(raw[i]!)) return undefined;
    } else {
      while (isDigit(raw[i]!)) {
        mantissa = mantissa * 10 + (raw[i]! - ZERO);
        digits++;
        i++;
      }
    }
    if (raw[i] === DOT) {
      i++;
      if (!isDigit(raw[i]!)) return undefined;
      while (isDigit(raw[i]!)) {
        mantissa = mantissa * 10 + (raw[i]! - ZERO);
        digits++;
        fraction++;
        i++;
      }
    }
    // Up to 15 digits the mantissa and 10^fraction are exact doubles, so one division rounds
    // correctly (Clinger's fast path): the same double as JSON.parse.
    if (digits > 15 || raw[i] === LOWER_E || raw[i] === UPPER_E) return INEXACT;
    const value = fraction ? mantissa / POW10[fraction]! : mantissa;
    values[count++] = negative ? -value : value;
    while (i < raw.length && isSpace(raw[i]!)) i++;
    if (raw[i] === COMMA) {
      i++;
      while (i < raw.length && isSpace(raw[i]!)) i++;
      continue;
    }
    if (raw[i] === CLOSE) return { count: count - used, end: i + 1 };
    return undefined;
  }
}
