/**
 * tokenize: text -> token ids, BYTE-LEVEL ONLY.
 *
 * This build ships no real tokenizer (no WordPiece/BPE vocabulary such as all-MiniLM-L6-v2's), so
 * this processor maps each UTF-8 byte to id byte + 1 (0 is padding). It is only right for models
 * trained on byte-level input; a real text model needs its own tokenizer, which is left out.
 *
 * Input `text` BYTES [n] (or the only BYTES tensor). Outputs `input_ids` and `attention_mask`,
 * INT64 [n, length], right-padded to the longest text; `maxLength` (step setting or request
 * parameter, default 512) truncates.
 */
import { bytesToText } from "../../shared/tensors.js";
import { pickInput, positiveInteger, type Processor } from "./processor.js";

const DEFAULT_MAX_LENGTH = 512;

/** Byte-level token ids of each text (byte + 1), truncated to `maxLength`. */
export function byteTokens(text: string, maxLength = DEFAULT_MAX_LENGTH): number[] {
  return Array.from(Buffer.from(text, "utf8").subarray(0, maxLength), (b) => b + 1);
}

/** The tokenize processor. */
export const tokenize: Processor = {
  name: "tokenize",
  run(inputs, context) {
    const input = pickInput(inputs, "tokenize", "text", "BYTES");
    const maxLength = positiveInteger(context, "tokenize", "maxLength", DEFAULT_MAX_LENGTH);
    const rows = bytesToText(input).map((text) => byteTokens(text, maxLength));
    const length = Math.max(1, ...rows.map((r) => r.length));
    const ids = new BigInt64Array(rows.length * length);
    const mask = new BigInt64Array(rows.length * length);
    rows.forEach((row, r) =>
      row.forEach((id, i) => {
        ids[r * length + i] = BigInt(id);
        mask[r * length + i] = 1n;
      }),
    );
    const shape = [rows.length, length];
    return [
      { name: "input_ids", datatype: "INT64", shape, data: ids },
      { name: "attention_mask", datatype: "INT64", shape, data: mask },
    ];
  },
};
