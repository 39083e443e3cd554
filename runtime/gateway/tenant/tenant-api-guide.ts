/**
 * The "Tenant API" section of docs/api.md (hack/gen-crds.ts puts it after the HTTP API section).
 * Kept next to the routes it describes (runtime/gateway/routes/tenant.ts).
 */
import { LIST_LIMIT, MAX_DAILY_RANGE_DAYS } from "./tenant-query.js";

/** The Markdown of the tenant API section. */
export function tenantApiGuide(): string {
  return `## Tenant API

A tenant reads its own budget and requests, and cancels its own requests, with the same credentials
it calls models with (an API key, or a JWT when the gateway verifies them). Everything is scoped to
the caller's tenant: another tenant's request answers \`404 request_not_found\`, exactly like an id
that does not exist, so not even its existence leaks. Errors have the documented shape
\`{"error": {"code": "<code>", "message": "<message>", ...details}}\` (see [HTTP errors](#http-errors)).

| Route | What it answers |
| --- | --- |
| \`GET /v1/usage\` | every limit of the tenant's TenantQuota with used, remaining and when its window resets; tokens by model today and this month; requests in flight |
| \`GET /v1/usage/daily?from=&to=\` | per-day totals (tokens, requests, split by model and pipeline), for invoices |
| \`GET /v1/requests?status=&model=&since=&limit=&cursor=\` | the tenant's finished requests, newest first, a page at a time |
| \`DELETE /v1/requests/{id}\` | cancels a queued or running request |

### GET /v1/usage

\`\`\`json
{
  "tenant": "acme",
  "at": "2026-12-04T08:00:00.000Z",
  "limits": {
    "tokensPerMonth": { "limit": 5000000, "used": 120340, "remaining": 4879660, "resetsAt": "2027-01-01T00:00:00.000Z" },
    "tokensPerDay": { "limit": 200000, "used": 5120, "remaining": 194880, "resetsAt": "2026-12-05T00:00:00.000Z" },
    "tokensPerMinute": { "limit": 20000, "used": 300, "remaining": 19700, "resetsAt": "2026-12-04T08:01:00.000Z" },
    "requestsPerMinute": { "limit": 600, "used": 4, "remaining": 596, "resetsAt": "2026-12-04T08:01:00.000Z" },
    "concurrentRequests": { "limit": 20, "used": 1, "remaining": 19, "resetsAt": null }
  },
  "inFlight": { "count": 1, "requests": [{ "id": "3f0c…", "reservedAt": "2026-12-04T07:59:58.120Z" }] },
  "tokens": {
    "today": { "day": "2026-12-04", "tokens": 5000, "requests": 41,
      "byModel": [{ "kind": "model", "name": "ocr-rec", "tokens": 5000, "requests": 41 }] },
    "thisMonth": { "month": "2026-12", "tokens": 120220, "requests": 902, "byModel": [] }
  }
}
\`\`\`

- \`limits\` lists the limits the TenantQuota sets (an unset limit does not apply and is absent).
  \`used\` is the quota's own counter in Redis: tokens of finished requests as charged, plus what
  requests still in flight have reserved (their unused part is refunded when they finish). Windows
  are fixed UTC windows: the calendar month, the day, the minute; \`resetsAt\` is when the counter
  starts again from zero (\`null\` for \`concurrentRequests\`, which is not a window).
- \`inFlight\`: requests reserved and not yet finished (queued or running), the oldest first, at most
  100 listed (\`count\` is exact).
- \`tokens\`: what PostgreSQL recorded for finished requests, by model and pipeline (the same numbers
  \`GET /v1/usage/daily\` and the invoices use). Once nothing is in flight, \`tokens.today.tokens\`
  equals \`limits.tokensPerDay.used\`.

### GET /v1/usage/daily

\`from\` and \`to\` are UTC days (\`YYYY-MM-DD\`), both included, at most ${MAX_DAILY_RANGE_DAYS} days apart;
by default \`to\` is today and \`from\` the first day of \`to\`'s month. Every day of the range is
listed, with zeros on days without requests. A request counts on the UTC day it was submitted (the
day whose quota window it reserved against). Bad dates, \`from\` after \`to\` or a longer range are
\`400 invalid_parameter\` with the reason.

\`\`\`json
{ "tenant": "acme", "from": "2026-12-01", "to": "2026-12-02", "days": [
  { "day": "2026-12-01", "tokens": 15, "requests": 2, "byModel": [{ "kind": "model", "name": "ocr-rec", "tokens": 15, "requests": 2 }] },
  { "day": "2026-12-02", "tokens": 0, "requests": 0, "byModel": [] } ] }
\`\`\`

### GET /v1/requests

The tenant's requests that have a record (\`succeeded\`, \`failed\`, \`cancelled\`), newest first by
submission time. Requests still queued or running have no record yet: \`GET /v1/usage\` lists them
and \`GET /v1/requests/{id}\` reads one.

| Parameter | Meaning |
| --- | --- |
| \`status\` | \`succeeded\`, \`failed\` or \`cancelled\` |
| \`model\` | name of a model or pipeline |
| \`since\` | ISO 8601 date or date-time: only requests submitted at or after it |
| \`limit\` | page size, 1-${LIST_LIMIT.max} (default ${LIST_LIMIT.default}) |
| \`cursor\` | \`nextCursor\` of the previous page (send the same filters again) |

\`\`\`json
{ "data": [ { "id": "…", "status": "succeeded", "target": { "kind": "model", "name": "ocr-rec" },
    "submittedAt": "…", "finishedAt": "…",
    "tokens": { "reserved": 58, "input": 8, "output": 6, "charged": 14 } } ],
  "nextCursor": "WyIyMDI2LTEyLTA0VDA3OjU5OjU4LjEyMDExMloiLCIzZjBjLi4uIl0" }
\`\`\`

\`nextCursor\` is \`null\` on the last page. Pages are keyset-paginated: the cursor names the last
request of the page and the next page starts strictly after it, so requests that finish while a
client pages through neither repeat nor shift what it has not read yet (new requests are newer than
the first page: read them by starting again). One index (\`tenant, submitted_at, id\`) serves every
page at the same cost however deep; \`status\` and \`model\` filter the rows that index walks. A cursor
that was not handed out by this API is \`400 invalid_cursor\`; other bad parameters are
\`400 invalid_parameter\` naming the parameter.

### DELETE /v1/requests/{id}

Cancels a request of the caller's tenant and answers \`202\` with the request's current status
document and \`"cancellation": "requested"\`; the record then says what happened:

- **Queued** (not yet started by a worker): the worker that receives it skips it without running it
  and the record says \`cancelled\` (error code \`cancelled\`), charging nothing: the reserved tokens
  are refunded and the concurrency slot is freed. It still counts in \`requestsPerMinute\` (it was
  submitted).
- **Running, generative** (\`gguf\` models): the generation stops within a token or so; the record
  says \`cancelled\`, keeps the text generated so far, and charges the prompt and the tokens
  generated, exactly.
- **Running, other models** (ONNX): a batch already handed to the model is not interrupted; the
  request finishes and its record says \`succeeded\` (or \`failed\`). Not yet stoppable mid-run.
- **Finished** (\`succeeded\`, \`failed\` or \`cancelled\`): \`409 request_finished\`, with \`id\` and
  \`status\` in the error body.

A caller still waiting for the answer (a synchronous \`/v2\` infer or an OpenAI-style call) gets
\`409 request_cancelled\`. Cancelling works whatever queue a request waits in: the gateway records
the cancellation in Redis (kept for \`TURNPIKE_REQUEST_STATE_TTL_SECONDS\`), each worker checks it
where it accepts a task, and generative workers also hear it on the cancel exchange while they
generate.
`;
}
