/**
 * The HTTP API section of docs/api.md (hack/gen-crds.ts puts it before "HTTP errors", whose table
 * test/api/error-statuses.test.ts holds to errors.ts). Kept next to the routes it describes.
 */

/** The Markdown of the HTTP API section. */
export function httpApiGuide(): string {
  return `## HTTP API (Open Inference Protocol v2)

The gateway speaks the Open Inference Protocol v2
(the KServe v2 / Triton HTTP protocol), so its clients work unmodified; it is tested with
\`tritonclient[http]\` from PyPI. Every route but health and \`/metrics\` needs an API key:
\`Authorization: Bearer <key>\` or \`X-API-Key: <key>\`.

| Route | What it answers |
| --- | --- |
| \`GET /v2/health/live\`, \`GET /v2/health/ready\` | liveness; readiness (Redis and RabbitMQ reachable) |
| \`GET /v2\` | server metadata; extensions \`binary_tensor_data\`, \`statistics\`, \`async\`, \`server-sent-events\`, \`idempotency-key\` |
| \`GET /v2/models/{name}[/versions/{version}]\` | model metadata: \`versions\`, \`inputs\`, \`outputs\` and \`parameters\` (steps, task, tokens, every input variant) |
| \`GET /v2/models/{name}[/versions/{version}]/ready\` | 200 once every model of the route has its queue (also while scaled to zero) |
| \`GET /v2/models/{name}[/versions/{version}]/config\` | the configuration in Triton's shape: \`max_batch_size\`, \`input\`/\`output\` with \`data_type\` and \`dims\` (without the batch dimension when batching) |
| \`GET /v2/models/{name}[/versions/{version}]/stats\`, \`GET /v2/models/stats\` | statistics: per target, infer requests that succeeded, failed or were left pending, with cumulative nanoseconds |
| \`POST /v2/models/{name}[/versions/{version}]/infer\` | inference, for InferenceModels and Pipelines alike |
| \`GET /v1/requests/{id}\`, \`GET /v1/requests/{id}/events\` | a request's status and result; its Server-Sent Events |

**Versions.** A model or pipeline has one version: its \`metadata.generation\` (the version the
runtime config was rendered from; \`1\` in a hand-written runtime config). Any other version in a
path is \`404 model_version_not_found\`.

**Inputs in metadata.** \`inputs\` lists tensors a generic client can build from datatype and shape
alone. A model that takes several input variants lists the plain-number one there (OCR recognition:
\`x\` FP32 \`[-1, 3, 48, -1]\`) and every variant in \`parameters.input_variants\` (OCR also takes
\`image\` BYTES \`[-1]\`, one PNG per text line). By default the worker decodes and resizes the PNG
lines; a gateway started with \`TURNPIKE_OCR_PREPROCESS=gateway\` does it itself (the same code) and
queues the \`x\` tensor instead, so the worker's core runs only the model, a PNG that does not
decode is refused at once with \`400 invalid_tensor\`, and each queued line grows from the PNG's few
KB to about 46 KB (more, at 4 bytes a value, when a request's lines hold over 256 distinct values).
The answer is the same either way.

**Bodies.** An infer body is JSON, sent as \`application/json\` or without a \`Content-Type\` (the
protocol's default). With the binary tensor data extension the body is a JSON header of
\`Inference-Header-Content-Length\` bytes followed by the raw data of each input whose
\`parameters.binary_data_size\` is set, in input order: little-endian elements for numbers, and for
BYTES a 4-byte little-endian length before each element. In JSON, a BYTES input the model declares
binary (OCR \`image\`) carries base64 strings. Outputs come back binary when the request sets
\`parameters.binary_data_output: true\` or an output's \`parameters.binary_data: true\` (which wins):
those outputs carry \`parameters.binary_data_size\` instead of \`data\`, their bytes follow the JSON
header, and the answer's \`Inference-Header-Content-Length\` gives the header's length. Other media
types are \`415\`.

**Waiting.** An infer waits for its result up to \`TURNPIKE_SYNC_TIMEOUT_MS\` (or
\`parameters.timeout\` in ms, or \`Prefer: wait=<seconds>\`, capped by
\`TURNPIKE_MAX_SYNC_TIMEOUT_MS\`) and answers 200 with the outputs. When the wait runs out first, the
request goes on, and the answer is \`504 sync_timeout\`: a protocol error whose message names the
request id to poll, with \`request_id\` and \`location\` in the body and the \`Location\` and
\`X-Request-Id\` headers; read the result at \`GET /v1/requests/{id}\`. A client that wants an id
instead of a wait sends \`Prefer: respond-async\` and gets \`202\` with \`{"id", "status", "location"}\`
at once (also with a wait of 0). \`Idempotency-Key\` makes retries return the first request.

**Errors.** On the \`/v2\` routes an error body has the protocol's shape, \`{"error": "<message>",
"code": "<code>"}\` (plus \`request_id\` and \`location\` for \`sync_timeout\`), so OIP clients show
the message; elsewhere it is \`{"error": {"code": "<code>", "message": "<message>"}}\`. Every error
answer also carries the code in the \`Turnpike-Error-Code\` header. The codes and their statuses are
listed under "HTTP errors".
`;
}
