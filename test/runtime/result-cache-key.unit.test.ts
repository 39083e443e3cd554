/** The result cache's pure rules: which requests are deterministic and what their key covers. */
import { describe, expect, it } from "vitest";
import {
  generationRequestSchema,
  modelConfigSchema,
  type ModelConfig,
} from "../../runtime/shared/contracts/index.js";
import {
  cacheKey,
  generationCacheInput,
  isDeterministic,
  oipCacheInput,
} from "../../runtime/gateway/result-cache.js";

const model = (extra: Record<string, unknown> = {}): ModelConfig =>
  modelConfigSchema.parse({ name: "m", uri: "file:///m.onnx", cache: { generation: "g1" }, ...extra });
const generation = (extra: Record<string, unknown> = {}) =>
  generationRequestSchema.parse({ kind: "completion", prompt: "hi", maxTokens: 4, ...extra });
const x = (data: string) => ({ name: "x", datatype: "FP32" as const, shape: [1], data });

describe("result cache rules", () => {
  it("treats every ONNX request as deterministic, a generation only at temperature 0 with a seed", () => {
    expect(isDeterministic(model())).toBe(true);
    const gguf = model({ format: "gguf" });
    expect(isDeterministic(gguf, generation({ temperature: 0, seed: 1 }))).toBe(true);
    expect(isDeterministic(gguf, generation({ temperature: 0 }))).toBe(false);
    expect(isDeterministic(gguf, generation({ temperature: 0.5, seed: 1 }))).toBe(false);
    expect(isDeterministic(gguf, generation({ seed: 1 }))).toBe(false); // default temperature 1
  });

  it("keys on model, generation, tenant (scope tenant), canonical input and parameters", () => {
    const key = (m: ModelConfig, tenant: string, input: unknown) => cacheKey(m, tenant, input);
    const base = key(model(), "acme", oipCacheInput([x("AAAA")], { a: 1, b: 2 }));
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    // Parameter order and input order do not matter.
    expect(key(model(), "acme", oipCacheInput([x("AAAA")], { b: 2, a: 1 }))).toBe(base);
    const two = [x("AAAA"), { ...x("BBBB"), name: "y" }];
    expect(key(model(), "acme", oipCacheInput(two, {}))).toBe(
      key(model(), "acme", oipCacheInput([...two].reverse(), {})),
    );
    // Everything else does.
    expect(key(model(), "acme", oipCacheInput([x("AAAB")], { a: 1, b: 2 }))).not.toBe(base);
    expect(key(model(), "acme", oipCacheInput([x("AAAA")], { a: 1, b: 3 }))).not.toBe(base);
    expect(key(model(), "other", oipCacheInput([x("AAAA")], { a: 1, b: 2 }))).not.toBe(base);
    expect(
      key(model({ cache: { generation: "g2" } }), "acme", oipCacheInput([x("AAAA")], { a: 1, b: 2 })),
    ).not.toBe(base);
    expect(key(model({ name: "n" }), "acme", oipCacheInput([x("AAAA")], { a: 1, b: 2 }))).not.toBe(base);
    // Scope model: tenants share the key.
    const shared = model({ cache: { generation: "g1", scope: "model" } });
    expect(key(shared, "acme", {})).toBe(key(shared, "other", {}));
  });

  it("ignores where a generation's stream goes, not its sampling settings", () => {
    const m = model({ format: "gguf" });
    const g = generation({ temperature: 0, seed: 1 });
    const key = (r: ReturnType<typeof generation>) => cacheKey(m, "acme", generationCacheInput(r));
    expect(key({ ...g, replyTo: "turnpike.p.gateway.1" })).toBe(key(g));
    expect(key({ ...g, maxTokens: 5 })).not.toBe(key(g));
    expect(key({ ...g, seed: 2 })).not.toBe(key(g));
    expect(key({ ...g, stop: ["."] })).not.toBe(key(g));
  });
});
