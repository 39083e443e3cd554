/**
 * Handing a create's managed fields over to the server-side apply (child-create.ts), as a pure
 * function: only this operator's own create entry is relabelled, and only when no apply entry
 * of its own exists yet.
 */
import { describe, expect, it } from "vitest";
import { handedOver } from "../../operator/shared/child-create.js";

const fields = { fieldsType: "FieldsV1", fieldsV1: { "f:spec": {} }, apiVersion: "apps/v1" };

describe("handedOver", () => {
  it("relabels the operator's create entry as its apply entry and keeps every other entry", () => {
    const entries = [
      { ...fields, manager: "pepr", operation: "Update" },
      { ...fields, manager: "pepr", operation: "Update", subresource: "status" },
      { ...fields, manager: "kube-controller-manager", operation: "Update" },
    ];
    expect(handedOver(entries)).toEqual([
      { ...fields, manager: "pepr", operation: "Apply" },
      entries[1],
      entries[2],
    ]);
  });

  it("leaves a child it did not create, or one already applied to, alone", () => {
    expect(handedOver(undefined)).toBeUndefined();
    expect(handedOver([{ ...fields, manager: "pepr", operation: "Apply" }])).toBeUndefined();
    expect(handedOver([{ ...fields, manager: "kubectl-edit", operation: "Update" }])).toBeUndefined();
    expect(
      handedOver([
        { ...fields, manager: "pepr", operation: "Apply" },
        { ...fields, manager: "pepr", operation: "Update" },
      ]),
    ).toBeUndefined();
  });
});
