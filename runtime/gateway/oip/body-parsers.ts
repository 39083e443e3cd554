/**
 * How the gateway reads request bodies. JSON as before; a body without a Content-Type is JSON too
 * (the Open Inference Protocol's default, and what OIP clients send); a body with an
 * `Inference-Header-Content-Length` header (JSON or application/octet-stream) is a JSON header
 * followed by binary tensor data, read into a {@link BinaryInferBody}. Any other media type is 415.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { ApiError } from "../errors.js";
import { BinaryInferBody, HEADER_LENGTH_HEADER, splitBinaryBody } from "./binary-tensors.js";
import { liftNumberRuns, MIN_LIFT_BODY_BYTES, restoreNumberRuns } from "./number-runs.js";

/** Replaces fastify's JSON parser and adds the no-Content-Type and octet-stream ones. */
export function registerBodyParsers(app: FastifyInstance): void {
  // fastify's own JSON parser (secure-json-parse: __proto__ and constructor keys refused).
  const parseJson = app.getDefaultJsonParser("error", "error");
  const jsonText = (request: FastifyRequest, text: string): Promise<unknown> =>
    new Promise((resolve, reject) =>
      parseJson(request, text, (error, value) => (error ? reject(error) : resolve(value))),
    );
  // The same parser, answering at once (it calls back synchronously): number-runs.ts needs the
  // lifted values restored before any other body is read.
  const jsonNow = (request: FastifyRequest, text: string): unknown => {
    let result: { error: Error | null; value?: unknown } | undefined;
    parseJson(request, text, (error, value) => (result = { error, value }));
    if (!result) throw new Error("the JSON parser did not answer synchronously");
    if (result.error) throw result.error;
    return result.value;
  };
  const read = async (request: FastifyRequest, raw: Buffer): Promise<unknown> => {
    const headerLength = [request.headers[HEADER_LENGTH_HEADER]].flat()[0];
    if (headerLength === undefined) {
      // A large tensor body: its long number arrays are read without JSON.parse (number-runs.ts).
      const lifted = raw.length >= MIN_LIFT_BODY_BYTES ? liftNumberRuns(raw) : undefined;
      if (!lifted) return jsonText(request, raw.toString("utf8"));
      return restoreNumberRuns(jsonNow(request, lifted.text), lifted);
    }
    const split = splitBinaryBody(raw, headerLength, (text) => text);
    return new BinaryInferBody(await jsonText(request, split.json as string), split.binary);
  };

  app.removeContentTypeParser("application/json");
  app.addContentTypeParser(
    "application/json",
    { parseAs: "buffer" },
    (request: FastifyRequest, body: Buffer) => read(request, body),
  );
  app.addContentTypeParser(
    "application/octet-stream",
    { parseAs: "buffer" },
    (request: FastifyRequest, body: Buffer) => {
      if (request.headers[HEADER_LENGTH_HEADER] === undefined) {
        throw new ApiError(
          "unsupported_media_type",
          "an application/octet-stream body needs Inference-Header-Content-Length (binary tensor data)",
        );
      }
      return read(request, body);
    },
  );
  // "*" is also what fastify uses for a body without Content-Type.
  app.addContentTypeParser("*", { parseAs: "buffer" }, (request: FastifyRequest, body: Buffer) => {
    if (request.headers["content-type"] !== undefined) {
      throw new ApiError("unsupported_media_type", "send the body as application/json");
    }
    return read(request, body);
  });
}
