/** The gateway's token estimate: what a request reserves before it is enqueued. */
import { describe, expect, it } from "vitest";
import { estimateTokens, inputTokensFor } from "../../runtime/gateway/tokens.js";
import { modelConfigSchema } from "../../runtime/shared/contracts/index.js";

const model = (input: object) => modelConfigSchema.parse({ name: "m", uri: "npm://x/y.onnx", ...input });

describe("inputTokensFor", () => {
  it("counts characters per token, rounded up, plus the per-request charge", () => {
    const chars = model({ tokens: { mode: "characters", charactersPerToken: 4, perRequest: 1 } });
    expect(inputTokensFor(chars, 14)).toBe(4 + 1);
    expect(inputTokensFor(model({ tokens: { mode: "characters" } }), 14)).toBe(14);
  });

  it("charges an OCR image only its per-request tokens (the text is charged as output)", () => {
    const ocr = model({ task: "ocr-recognition", tokens: { mode: "characters", perRequest: 1 } });
    expect(inputTokensFor(ocr, 0)).toBe(1);
  });

  it("estimates a quarter of the characters without a tokenizer, and nothing in fixed mode", () => {
    expect(inputTokensFor(model({ tokens: { mode: "tokenizer", perRequest: 2 } }), 10)).toBe(3 + 2);
    expect(inputTokensFor(model({ tokens: { mode: "fixed", perRequest: 5 } }), 10)).toBe(0);
  });

  it("reserves the input plus the most output every model step can produce", () => {
    const ocr = model({
      task: "ocr-recognition",
      tokens: { mode: "characters", maxOutputTokens: 64, perRequest: 1 },
    });
    const fixed = model({ name: "f", tokens: { mode: "fixed", maxOutputTokens: 1, unitsPerRequest: 3 } });
    expect(estimateTokens([ocr, fixed], 0)).toEqual({ inputTokens: 1, reservedTokens: 1 + 64 + 3 });
  });
});
