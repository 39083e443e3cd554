// The generative path end to end with the real SmolLM2-135M-Instruct model and the unmodified
// official `openai` client: gateway (OpenAI routes) -> RabbitMQ -> worker (llama engine) ->
// collector -> PostgreSQL, with text streamed from the worker through the gateway's own queue.
import { randomUUID } from "node:crypto";
import OpenAI from "openai";
import { publishJson } from "../../runtime/shared/amqp.js";
import { names } from "../../runtime/shared/contracts/index.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "./helpers/worker-fixtures.js";
import type { GatewayFixture } from "./helpers/gateway-fixture.js";
import { smolLm2Reference, smolLm2Tokenizer, type SmolLm2Tokenizer } from "./helpers/llm-fixture.js";
import {
  openAiClient,
  requestIdOf,
  SMOLLM2,
  smolLm2Stack,
  type SmolLm2Stack,
} from "./helpers/smollm2-stack.js";

const KEY = "sk-llm-acme-0123456789";
const TIGHT_KEY = "sk-llm-tight-0123456789";
const QUESTION = [{ role: "user" as const, content: "What is the capital of France?" }];
const PROMPT = "The three primary colors are";

let stack: SmolLm2Stack;
let fx: GatewayFixture;
let client: OpenAI;
let tokenizer: SmolLm2Tokenizer;
/** What the model answers at temperature 0 when the worker's engine runs it alone, on this machine. */
let EXPECTED_CHAT: string;
let EXPECTED_COMPLETION: string;

beforeAll(async () => {
  stack = await smolLm2Stack({
    model: { batching: { maxBatchSize: 4, maxDelayMs: 0 }, tokens: { maxOutputTokens: 200 } },
    tenants: [
      { name: "acme", apiKey: KEY },
      { name: "tight", apiKey: TIGHT_KEY, limits: { tokensPerDay: 600 } },
    ],
  });
  fx = stack.fx;
  tokenizer = await smolLm2Tokenizer(stack.path);
  client = openAiClient(fx, KEY);
  const reference = await smolLm2Reference(fx.config.models.find((m) => m.name === SMOLLM2)!, stack.path);
  try {
    EXPECTED_CHAT = await reference.generate({
      kind: "chat",
      messages: QUESTION,
      temperature: 0,
      seed: 42,
      maxTokens: 24,
    });
    EXPECTED_COMPLETION = await reference.generate({
      kind: "completion",
      prompt: PROMPT,
      temperature: 0,
      seed: 7,
      maxTokens: 12,
    });
  } finally {
    await reference.close();
  }
  // A reference that said nothing would make the comparisons below weak.
  expect(EXPECTED_CHAT.length).toBeGreaterThan(0);
  expect(EXPECTED_COMPLETION.length).toBeGreaterThan(0);
}, 180_000);

afterAll(async () => {
  await stack?.close();
  await tokenizer?.close();
}, 180_000);

async function record(id: string) {
  const response = await fetch(`${fx.url}/v1/requests/${id}`, {
    headers: { authorization: `Bearer ${KEY}` },
  });
  return (await response.json()) as {
    status: string;
    tokens: { input: number; output: number; charged: number };
    result?: { outputs: { name: string; data: string[] }[] };
  };
}

describe("OpenAI-compatible API on SmolLM2", () => {
  it("answers a chat deterministically at temperature 0 with a fixed seed, counting tokens with the model's tokenizer", async () => {
    const ask = () =>
      client.chat.completions.create({
        model: "smollm2",
        messages: QUESTION,
        max_tokens: 24,
        temperature: 0,
        seed: 42,
      });
    const first = await ask();
    const again = await ask();
    const text = first.choices[0]!.message.content!;
    expect(again.choices[0]!.message.content).toBe(text);
    expect(text).toBe(EXPECTED_CHAT);
    expect(first.object).toBe("chat.completion");
    expect(first.usage!.prompt_tokens).toBe(tokenizer.chat(QUESTION));
    const finish = first.choices[0]!.finish_reason;
    expect(first.usage!.completion_tokens).toBe(finish === "length" ? 24 : tokenizer.text(text) + 1);
    expect(first.usage!.total_tokens).toBe(first.usage!.prompt_tokens + first.usage!.completion_tokens);

    // The answer came straight from the worker; the record follows.
    await eventually(async () => (await record(requestIdOf(first.id))).status === "succeeded");
    const stored = await record(requestIdOf(first.id));
    expect(stored.tokens.input).toBe(first.usage!.prompt_tokens);
    expect(stored.tokens.output).toBe(first.usage!.completion_tokens);
    expect(stored.tokens.charged).toBe(first.usage!.total_tokens);
    expect(stored.result!.outputs.find((o) => o.name === "text")!.data[0]).toBe(text);
  });

  it("completes a prompt and stops at max_tokens with finish_reason length", async () => {
    const prompt = PROMPT;
    const done = await client.completions.create({
      model: "smollm2",
      prompt,
      max_tokens: 12,
      temperature: 0,
      seed: 7,
    });
    expect(done.object).toBe("text_completion");
    expect(done.choices[0]!.finish_reason).toBe("length");
    expect(done.choices[0]!.text).toBe(EXPECTED_COMPLETION);
    expect(done.usage).toEqual({
      prompt_tokens: tokenizer.prompt(prompt),
      completion_tokens: 12,
      total_tokens: tokenizer.prompt(prompt) + 12,
    });
  });

  it("streams chunks in order that join to the same text, then usage, then [DONE]; the record holds the whole text", async () => {
    const stream = await client.chat.completions.create({
      model: "smollm2",
      messages: QUESTION,
      max_tokens: 24,
      temperature: 0,
      seed: 42,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks[0]!.choices[0]!.delta.role).toBe("assistant");
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");
    expect(text).toBe(EXPECTED_CHAT);
    expect(chunks.filter((c) => (c.choices[0]?.delta.content ?? "") !== "").length).toBeGreaterThan(3);
    const usage = chunks.at(-1)!;
    expect(usage.choices).toEqual([]);
    expect(usage.usage!.prompt_tokens).toBe(tokenizer.chat(QUESTION));
    expect(chunks.at(-2)!.choices[0]!.finish_reason).toMatch(/^(stop|length)$/);
    const id = requestIdOf(chunks[0]!.id);
    await eventually(async () => (await record(id)).status === "succeeded");
    const stored = await record(id);
    expect(stored.result!.outputs.find((o) => o.name === "text")!.data[0]).toBe(text);
    expect(stored.tokens.output).toBe(usage.usage!.completion_tokens);
  });

  it("stops generating when the client disconnects mid-stream and charges only what was generated", async () => {
    const stream = await client.chat.completions.create({
      model: "smollm2",
      messages: [{ role: "user", content: "Write a long story about a dragon and a knight." }],
      max_tokens: 200,
      temperature: 0,
      seed: 1,
      stream: true,
    });
    let id = "";
    let seen = 0;
    for await (const chunk of stream) {
      id = requestIdOf(chunk.id);
      if (++seen === 4) break; // leaving the loop aborts the HTTP request
    }
    await eventually(async () => (await record(id)).status === "succeeded", 30_000);
    const stored = await record(id);
    expect(stored.result!.outputs.find((o) => o.name === "finish_reason")!.data[0]).toBe("cancelled");
    expect(stored.tokens.output).toBeGreaterThanOrEqual(3);
    expect(stored.tokens.output).toBeLessThan(200);
    expect(stored.tokens.charged).toBe(stored.tokens.input + stored.tokens.output);
  });

  it("answers Prefer: respond-async with 202, then the record holds the completion", async () => {
    const response = await fetch(`${fx.url}/v1/completions`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${KEY}`,
        "content-type": "application/json",
        prefer: "respond-async",
      },
      body: JSON.stringify({
        model: "smollm2",
        prompt: PROMPT,
        max_tokens: 12,
        temperature: 0,
        seed: 7,
      }),
    });
    expect(response.status).toBe(202);
    const { id, location } = (await response.json()) as { id: string; location: string };
    expect(location).toBe(`/v1/requests/${id}`);
    await eventually(async () => (await record(id)).status === "succeeded", 30_000);
    const stored = await record(id);
    expect(stored.result!.outputs.find((o) => o.name === "text")!.data[0]).toBe(EXPECTED_COMPLETION);
    expect(stored.tokens.output).toBe(12);
  });

  it("ends a malformed generation task with a failed record (invalid_input), like any model's bad input", async () => {
    const requestId = randomUUID();
    await publishJson(
      fx.channel,
      names(fx.prefix).modelQueue("smollm2"),
      {
        requestId,
        tenant: "acme",
        target: { kind: "model", name: "smollm2" },
        route: [{ step: "smollm2", model: "smollm2" }],
        inputs: [],
        parameters: { generation: { kind: "chat", maxTokens: 4 } },
        reservedTokens: 100,
        inputTokens: 0,
        outputTokens: 0,
        submittedAt: Date.now(),
        steps: [],
      },
      { messageId: requestId },
    );
    await eventually(async () => (await record(requestId)).status === "failed", 30_000);
    const stored = (await record(requestId)) as unknown as { error: { code: string; message: string } };
    expect(stored.error.code).toBe("invalid_input");
    expect(stored.error.message).toMatch(/chat needs messages/);
  });

  it("lists the models the tenant may call and answers errors in OpenAI's shape", async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(["smollm2"]);
    const missing = await client.chat.completions
      .create({ model: "nope", messages: QUESTION })
      .catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(OpenAI.NotFoundError);
    expect((missing as InstanceType<typeof OpenAI.NotFoundError>).code).toBe("model_not_found");
    const two = await client.chat.completions
      .create({ model: "smollm2", messages: QUESTION, n: 2 })
      .catch((e: unknown) => e);
    expect(two).toBeInstanceOf(OpenAI.BadRequestError);
    const tooMany = await client.chat.completions
      .create({ model: "smollm2", messages: QUESTION, max_tokens: 5000 })
      .catch((e: unknown) => e);
    expect(tooMany).toBeInstanceOf(OpenAI.BadRequestError);
    const badKey = openAiClient(fx, "sk-wrong");
    expect(await badKey.models.list().catch((e: unknown) => e)).toBeInstanceOf(OpenAI.AuthenticationError);
  });

  it("keeps the quota exact under 32 concurrent streams with a budget that runs out", async () => {
    const tight = openAiClient(fx, TIGHT_KEY);
    const outcomes = await Promise.all(
      Array.from({ length: 32 }, async (_, i) => {
        try {
          const stream = await tight.chat.completions.create({
            model: "smollm2",
            messages: [{ role: "user", content: `Say a number: ${i}` }],
            max_tokens: 8,
            temperature: 0,
            seed: i,
            stream: true,
            stream_options: { include_usage: true },
          });
          let total = 0;
          for await (const chunk of stream) if (chunk.usage) total = chunk.usage.total_tokens;
          return { ok: true as const, total };
        } catch (error) {
          return { ok: false as const, error };
        }
      }),
    );
    const served = outcomes.filter((o) => o.ok);
    const refused = outcomes.filter((o) => !o.ok);
    expect(served.length).toBeGreaterThan(0);
    expect(refused.length).toBeGreaterThan(0);
    for (const r of refused) expect(r.error).toBeInstanceOf(OpenAI.RateLimitError);
    const charged = served.reduce((n, o) => n + o.total, 0);
    await eventually(async () => (await fx.quota.usage("tight")).inFlight === 0, 30_000);
    const usage = await fx.quota.usage("tight");
    expect(usage.tokensToday).toBe(charged);
    expect(usage.tokensToday).toBeLessThanOrEqual(600);
    const { rows } = await fx.pool.query<{ tokens: string }>(
      `SELECT sum(tokens)::text AS tokens FROM "${fx.schema}".tenant_usage WHERE tenant = 'tight'`,
    );
    expect(Number(rows[0]!.tokens)).toBe(charged);
  }, 300_000);
});
