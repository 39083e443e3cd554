/** Which tenant may call what: the runtime config's tenants, as the operator renders them. */
import { describe, expect, it } from "vitest";
import { checkAllowed } from "../../runtime/gateway/auth.js";
import { parseRuntimeConfig } from "../../runtime/shared/contracts/index.js";

const config = parseRuntimeConfig({
  prefix: "allow",
  models: [
    { name: "ocr", uri: "npm://x/ocr.onnx" },
    { name: "echo", uri: "npm://x/echo.onnx" },
  ],
  tenants: [
    { name: "open", models: [] },
    { name: "narrow", models: ["ocr"] },
    { name: "paused", models: [], suspended: true },
  ],
});

const refusal = (tenant: string, target: string) => {
  try {
    checkAllowed(config, tenant, target);
    return undefined;
  } catch (error) {
    return (error as { code?: string }).code;
  }
};

describe("checkAllowed", () => {
  it("lets a tenant call what its allow-list names, or anything with an empty list", () => {
    expect(refusal("open", "echo")).toBeUndefined();
    expect(refusal("narrow", "ocr")).toBeUndefined();
    expect(refusal("narrow", "echo")).toBe("model_not_allowed");
  });

  it("refuses a suspended tenant and one without a TenantQuota", () => {
    expect(refusal("paused", "ocr")).toBe("tenant_suspended");
    expect(refusal("stranger", "ocr")).toBe("tenant_unknown");
  });
});
