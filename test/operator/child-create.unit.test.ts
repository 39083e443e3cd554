/**
 * Handing a create's managed fields over to the server-side apply (child-create.ts), as a pure
 * function: only this operator's own create entry is relabelled; when an apply entry of its own
 * exists already (a relabel that lost a race), the create's fields join it.
 */
import { describe, expect, it } from "vitest";
import { fieldsUnion, handedOver } from "../../operator/shared/child-create.js";

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
  });

  it("joins the create's fields to an apply entry that exists already, and drops the create's entry", () => {
    const status = { ...fields, manager: "pepr", operation: "Update", subresource: "status" };
    const entries = [
      { ...fields, manager: "pepr", operation: "Apply", fieldsV1: { "f:spec": { "f:replicas": {} } } },
      status,
      {
        ...fields,
        manager: "pepr",
        operation: "Update",
        fieldsV1: { "f:metadata": { "f:labels": { "f:a": {} } }, "f:spec": { "f:paused": {} } },
      },
    ];
    expect(handedOver(entries)).toEqual([
      {
        ...fields,
        manager: "pepr",
        operation: "Apply",
        fieldsV1: {
          "f:spec": { "f:replicas": {}, "f:paused": {} },
          "f:metadata": { "f:labels": { "f:a": {} } },
        },
      },
      status,
    ]);
    // Entries of two API versions are not merged.
    expect(
      handedOver([
        { ...fields, manager: "pepr", operation: "Apply" },
        { ...fields, manager: "pepr", operation: "Update", apiVersion: "apps/v1beta1" },
      ]),
    ).toBeUndefined();
  });
});

describe("fieldsUnion", () => {
  it("merges nested field sets and keeps leaves", () => {
    expect(
      fieldsUnion(
        { "f:spec": { 'k:{"name":"a"}': { ".": {}, "f:image": {} } } },
        { "f:spec": { 'k:{"name":"a"}': { "f:env": {} }, "f:replicas": {} }, "f:metadata": {} },
      ),
    ).toEqual({
      "f:spec": { 'k:{"name":"a"}': { ".": {}, "f:image": {}, "f:env": {} }, "f:replicas": {} },
      "f:metadata": {},
    });
  });
});
