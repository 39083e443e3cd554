/** Which models a too-large runtime config leaves unrouted, and when their status must be redone. */
import { describe, expect, it } from "vitest";
import { desiredRuntimeConfig } from "../../operator/runtime-config/desired.js";
import { UnroutedModels, unroutedModels } from "../../operator/runtime-config/unrouted-models.js";
import { parseRuntimeConfig } from "../../runtime/shared/contracts/index.js";
import { syntheticModels } from "./helpers/synthetic-models.js";

describe("unroutedModels", () => {
  it("names the models whose entry the live config lacks or has differently", () => {
    const models = syntheticModels(5);
    const live = parseRuntimeConfig(desiredRuntimeConfig("models", models.slice(0, 3), [], []).config);
    const changed = structuredClone(models);
    changed[1]!.spec!.batching = { maxBatchSize: 32, maxDelayMs: 1 };
    const desired = parseRuntimeConfig(desiredRuntimeConfig("models", changed, [], []).config);
    const names = [1, 3, 4].map((i) => changed[i]!.metadata!.name!).sort();
    expect(unroutedModels(desired, live).sort()).toEqual(names);
    expect(unroutedModels(desired, undefined)).toHaveLength(5);
  });
});

describe("UnroutedModels", () => {
  it("tells each model whose problem appears, changes or goes, and only those", () => {
    const told: string[] = [];
    const record = new UnroutedModels((namespace, name) => told.push(`${namespace}/${name}`));
    record.set("ns", ["a", "b"], "too large");
    expect(told.splice(0)).toEqual(["ns/a", "ns/b"]);
    record.set("ns", ["a", "b"], "too large");
    expect(told).toEqual([]);
    record.set("ns", ["b", "c"], "too large");
    expect(told.splice(0).sort()).toEqual(["ns/a", "ns/c"]);
    expect(record.problemFor("ns", "a")).toBeUndefined();
    expect(record.problemFor("ns", "b")?.reason).toBe("RuntimeConfigTooLarge");
    expect(record.problemFor("other", "b")).toBeUndefined();
    record.set("ns", []);
    expect(told.splice(0).sort()).toEqual(["ns/b", "ns/c"]);
    expect(record.problemFor("ns", "b")).toBeUndefined();
  });
});
