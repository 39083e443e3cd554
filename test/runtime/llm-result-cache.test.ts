// The result cache on a generative model, with the real SmolLM2-135M-Instruct and the unmodified
// `openai` client: temperature 0 with a seed is cached (chat, stream, completions, respond-async),
// any other generation never is; a new generation misses; hits and misses are counted.
import type OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cacheKeys } from "../../runtime/shared/contracts/index.js";
import { modelCounter, requestRow } from "./helpers/cache-fixtures.js";
import { call, type GatewayFixture } from "./helpers/gateway-fixture.js";
import { eventually } from "./helpers/worker-fixtures.js";
import {
  openAiClient,
  requestIdOf,
  SMOLLM2,
  smolLm2Stack,
  type SmolLm2Stack,
} from "./helpers/smollm2-stack.js";

const KEY = "sk-cache-acme-0123456789";
const MODEL = SMOLLM2;
const QUESTION = [{ role: "user" as const, content: "Name a color." }];

let stack: SmolLm2Stack;
let fx: GatewayFixture;
let client: OpenAI;

beforeAll(async () => {
  stack = await smolLm2Stack({
    model: {
      batching: { maxBatchSize: 2, maxDelayMs: 0 },
      tokens: { maxOutputTokens: 64 },
      cache: { generation: "g1", ttlSeconds: 600 },
    },
    tenants: [{ name: "acme", apiKey: KEY }],
  });
  fx = stack.fx;
  client = openAiClient(fx, KEY);
}, 180_000);

afterAll(async () => {
  await stack?.close();
}, 120_000);
const entries = () => fx.redis.zcard(cacheKeys(fx.prefix, MODEL).index);
const counter = (name: string) => modelCounter(fx, name, MODEL);
/** Generations on 2 shared cores take seconds each; no test here asserts a duration. */
const SLOW = 240_000;

/**
 * Sends a cache miss and waits until its answer is in the cache. The collector stores it right
 * after the record's commit, so the record alone (what this waited for before) could be visible
 * while a request sent at once still missed.
 */
async function storedMiss<T extends { id: string }>(send: () => Promise<T>): Promise<T> {
  const before = await entries();
  const done = await send();
  await requestRow(fx, requestIdOf(done.id));
  await eventually(async () => (await entries()) > before);
  return done;
}

const chat = (extra: { temperature?: number; seed?: number; max_tokens?: number } = {}) =>
  client.chat.completions.create({ model: MODEL, messages: QUESTION, max_tokens: 12, ...extra });

describe("result cache on SmolLM2", () => {
  it(
    "answers a repeated chat at temperature 0 with a seed from the cache: same text and usage, cached record, charged nothing",
    async () => {
      const hitsBefore = await counter("turnpike_cache_hits_total");
      const first = await storedMiss(() => chat({ temperature: 0, seed: 42 }));
      const again = await chat({ temperature: 0, seed: 42 });
      expect(again.id).not.toBe(first.id);
      expect(again.choices[0]!.message.content).toBe(first.choices[0]!.message.content);
      expect(again.choices[0]!.finish_reason).toBe(first.choices[0]!.finish_reason);
      expect(again.usage).toEqual(first.usage);
      const missRow = await requestRow(fx, requestIdOf(first.id));
      expect(missRow).toMatchObject({ cached: false, charged_tokens: String(first.usage!.total_tokens) });
      expect(await requestRow(fx, requestIdOf(again.id))).toMatchObject({
        cached: true,
        charged_tokens: "0",
        steps: [],
      });
      expect(await counter("turnpike_cache_hits_total")).toBe(hitsBefore + 1);
    },
    SLOW,
  );

  it(
    "answers stream: true from the cache as chunks that join to the cached text, with usage and [DONE]",
    async () => {
      const first = await storedMiss(() => chat({ temperature: 0, seed: 7 }));
      const stream = await client.chat.completions.create({
        model: MODEL,
        messages: QUESTION,
        max_tokens: 12,
        temperature: 0,
        seed: 7,
        stream: true,
        stream_options: { include_usage: true },
      });
      const chunks = [];
      for await (const chunk of stream) chunks.push(chunk);
      expect(chunks[0]!.choices[0]!.delta.role).toBe("assistant");
      expect(chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")).toBe(
        first.choices[0]!.message.content,
      );
      expect(chunks.at(-2)!.choices[0]!.finish_reason).toBe(first.choices[0]!.finish_reason);
      expect(chunks.at(-1)!.usage).toEqual(first.usage);
      expect((await requestRow(fx, requestIdOf(chunks[0]!.id))).cached).toBe(true);
    },
    SLOW,
  );

  it(
    "caches completions too, and answers Prefer: respond-async with 202 and the cached record",
    async () => {
      const body = { model: MODEL, prompt: "One, two,", max_tokens: 6, temperature: 0, seed: 1 };
      const first = await storedMiss(() => client.completions.create(body));
      const res = await call(fx.url, "/v1/completions", {
        key: KEY,
        body,
        headers: { prefer: "respond-async" },
      });
      expect(res.status).toBe(202);
      const { id } = (await res.json()) as { id: string };
      expect(await requestRow(fx, id)).toMatchObject({ cached: true, status: "succeeded" });
      const view = (await (await call(fx.url, `/v1/requests/${id}`, { key: KEY })).json()) as {
        cached?: boolean;
        result: { outputs: { name: string; data: string[] }[] };
      };
      expect(view.cached).toBe(true);
      expect(view.result.outputs.find((o) => o.name === "text")!.data[0]).toBe(first.choices[0]!.text);
    },
    SLOW,
  );

  it(
    "never caches a generation with temperature above 0 or without a seed",
    async () => {
      const before = {
        entries: await entries(),
        hits: await counter("turnpike_cache_hits_total"),
        misses: await counter("turnpike_cache_misses_total"),
      };
      const answers = [
        await chat({ temperature: 0.8, seed: 3, max_tokens: 3 }),
        await chat({ temperature: 0.8, seed: 3, max_tokens: 3 }),
        await chat({ temperature: 0, max_tokens: 3 }),
        await chat({ temperature: 0, max_tokens: 3 }),
      ];
      for (const a of answers) expect((await requestRow(fx, requestIdOf(a.id))).cached).toBe(false);
      expect(await entries()).toBe(before.entries);
      expect(await counter("turnpike_cache_hits_total")).toBe(before.hits);
      expect(await counter("turnpike_cache_misses_total")).toBe(before.misses);
    },
    SLOW,
  );

  it(
    "misses after the model's generation changes, then caches under the new one",
    async () => {
      const first = await chat({ temperature: 0, seed: 99, max_tokens: 8 });
      expect((await requestRow(fx, requestIdOf(first.id))).cached).toBe(false);
      // What a reload of the runtime config does when the operator renders a new generation.
      fx.config.models.find((m) => m.name === MODEL)!.cache!.generation = "g2";
      const after = await storedMiss(() => chat({ temperature: 0, seed: 99, max_tokens: 8 }));
      expect(after.choices[0]!.message.content).toBe(first.choices[0]!.message.content);
      expect((await requestRow(fx, requestIdOf(after.id))).cached).toBe(false);
      const again = await chat({ temperature: 0, seed: 99, max_tokens: 8 });
      expect((await requestRow(fx, requestIdOf(again.id))).cached).toBe(true);
    },
    SLOW,
  );
});
