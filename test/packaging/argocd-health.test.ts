/**
 * ArgoCD health checks (config/argocd/health-checks.yaml): one Lua script for the three kinds, run
 * here with fengari (a Lua VM in JavaScript) the way ArgoCD runs it: `obj` is the live object and
 * the script returns a table with status and message. Statuses are built with the operator's own
 * condition helpers, so the script reads exactly what the operator writes. ArgoCD runs Lua 5.1
 * (gopher-lua) and fengari 5.3, so the script is also checked for syntax newer than 5.1.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import fengari from "fengari";
import { describe, expect, it } from "vitest";
import yaml from "js-yaml";
import {
  degradedConditions,
  mergeConditions,
  progressingConditions,
  readyConditions,
  type ConditionInput,
} from "../../operator/shared/conditions.js";
import { repoRoot } from "../harness/kube.js";

const { lua, lauxlib, lualib, to_luastring } = fengari;

const KINDS = ["InferenceModel", "TenantQuota", "Pipeline"];
const configMap = yaml.load(readFileSync(join(repoRoot, "config/argocd/health-checks.yaml"), "utf8")) as {
  metadata: { name: string; namespace: string };
  data: Record<string, string>;
};
const scriptOf = (kind: string) => configMap.data[`resource.customizations.health.turnpike.dev_${kind}`]!;

/** A JavaScript value as a Lua expression (tables for objects and arrays; null is nil). */
function toLua(value: unknown): string {
  if (value === null || value === undefined) return "nil";
  if (typeof value === "string") {
    // Plain characters as they are, every other UTF-8 byte as a decimal escape (valid in Lua 5.1).
    const bytes = [...Buffer.from(value, "utf8")];
    return `"${bytes.map((b) => (/[\w .,:;/@()-]/.test(String.fromCharCode(b)) && b < 128 ? String.fromCharCode(b) : `\\${b}`)).join("")}"`;
  }
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (Array.isArray(value)) return `{${value.map(toLua).join(", ")}}`;
  return `{${Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `[${toLua(k)}] = ${toLua(v)}`)
    .join(", ")}}`;
}

interface Health {
  status: string;
  message: string;
}

/** Runs a health script as ArgoCD does: `obj` global, the chunk returns the health table. */
function runHealth(script: string, obj: unknown): Health {
  const L = lauxlib.luaL_newstate();
  lualib.luaL_openlibs(L);
  const chunk = [
    `obj = ${toLua(obj)}`,
    "local function health()",
    script,
    "end",
    "local hs = health()",
    "return hs.status, hs.message",
  ].join("\n");
  if (lauxlib.luaL_loadstring(L, to_luastring(chunk)) !== lua.LUA_OK) {
    throw new Error(`Lua syntax error: ${lua.lua_tojsstring(L, -1)}`);
  }
  if (lua.lua_pcall(L, 0, 2, 0) !== lua.LUA_OK) throw new Error(`Lua error: ${lua.lua_tojsstring(L, -1)}`);
  return { status: lua.lua_tojsstring(L, -2), message: lua.lua_tojsstring(L, -1) };
}

/** A Turnpike object of `kind` at `generation`, with conditions as the operator writes them. */
function object(
  kind: string,
  generation: number,
  status?: { observed: number; conditions: ConditionInput[] },
) {
  return {
    apiVersion: "turnpike.dev/v1alpha1",
    kind,
    metadata: { name: "ocr", namespace: "turnpike", generation },
    spec: {},
    ...(status
      ? {
          status: {
            observedGeneration: status.observed,
            conditions: mergeConditions(undefined, status.conditions, new Date("2026-01-01T00:00:00Z")),
          },
        }
      : {}),
  };
}

describe("ArgoCD health checks", () => {
  it("patch argocd-cm with one check per kind, all the same script", () => {
    expect(configMap.metadata).toMatchObject({ name: "argocd-cm", namespace: "argocd" });
    const keys = Object.keys(configMap.data).sort();
    expect(keys).toEqual(KINDS.map((k) => `resource.customizations.health.turnpike.dev_${k}`).sort());
    for (const kind of KINDS) expect(scriptOf(kind)).toBe(scriptOf("InferenceModel"));
  });

  it("use no syntax newer than Lua 5.1 (ArgoCD's gopher-lua)", () => {
    const code = scriptOf("InferenceModel")
      .replace(/--.*$/gm, "")
      .replace(/"(?:[^"\\]|\\.)*"/g, '""');
    expect(code).not.toMatch(/\bgoto\b|::\w+::|\/\/|<<|>>|[&|]|~(?!=)/);
    expect(code).not.toMatch(/\b(utf8|table\.move|math\.tointeger|string\.pack)\b/);
  });

  describe.each(KINDS)("%s", (kind) => {
    const check = (obj: unknown) => runHealth(scriptOf(kind), obj);

    it("is Progressing before the operator wrote any status", () => {
      expect(check(object(kind, 1))).toEqual({
        status: "Progressing",
        message: "Waiting for the Turnpike operator to reconcile this resource",
      });
    });

    it("is Healthy when Ready is True for the current generation", () => {
      const obj = object(kind, 3, { observed: 3, conditions: readyConditions(3, "2/2 workers ready") });
      expect(check(obj)).toEqual({ status: "Healthy", message: "2/2 workers ready" });
    });

    it("is Degraded when Degraded is True, with the operator's message", () => {
      const conditions = degradedConditions(2, "InvalidModelSource", "spec.model.uri s3://x: not supported");
      expect(check(object(kind, 2, { observed: 2, conditions }))).toEqual({
        status: "Degraded",
        message: "spec.model.uri s3://x: not supported",
      });
    });

    it("is Progressing while the operator has not observed the latest generation, even if Ready", () => {
      const stale = object(kind, 5, { observed: 4, conditions: readyConditions(4, "ready") });
      expect(check(stale)).toEqual({
        status: "Progressing",
        message: "Waiting for the Turnpike operator to observe generation 5",
      });
    });

    it("is Progressing while Progressing is True", () => {
      const conditions = progressingConditions(1, "WorkersStarting", "0/1 workers ready");
      expect(check(object(kind, 1, { observed: 1, conditions }))).toEqual({
        status: "Progressing",
        message: "0/1 workers ready",
      });
    });

    it("is Degraded when Ready is False and nothing progresses", () => {
      const conditions: ConditionInput[] = [
        { type: "Ready", status: "False", reason: "X", message: "stuck" },
      ];
      expect(check(object(kind, 1, { observed: 1, conditions }))).toEqual({
        status: "Degraded",
        message: "stuck",
      });
    });

    it("handles an empty condition list and missing messages", () => {
      const obj = { metadata: { generation: 1 }, status: { observedGeneration: 1, conditions: [] } };
      expect(check(obj)).toEqual({ status: "Progressing", message: "Waiting for the Ready condition" });
      const ready = {
        metadata: { generation: 1 },
        status: { observedGeneration: 1, conditions: [{ type: "Ready", status: "True" }] },
      };
      expect(check(ready)).toEqual({ status: "Healthy", message: "Ready" });
    });
  });

  it("shows a suspended, ready TenantQuota as Suspended", () => {
    const quota = object("TenantQuota", 2, { observed: 2, conditions: readyConditions(2, "limits applied") });
    quota.spec = { suspend: true } as never;
    expect(runHealth(scriptOf("TenantQuota"), quota)).toEqual({
      status: "Suspended",
      message: "Suspended: limits applied",
    });
  });
});
