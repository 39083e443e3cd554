/**
 * Hand-written section of docs/api.md: the gateway's error codes and their HTTP statuses.
 * test/api/error-statuses.test.ts compares this table with runtime/gateway/errors.ts, so a status
 * changed in one place and not the other fails the build.
 */

export const httpErrorsGuide = `
## HTTP errors

Every refusal of the gateway carries a stable error code next to a message for people (in the body
and in the \`Turnpike-Error-Code\` header); the code decides the HTTP status, and clients should
branch on the code. A \`Retry-After\` header comes with
the codes that are worth retrying later (\`rate_limited\`, \`quota_exceeded\`, \`queue_full\`,
\`model_unavailable\`, \`model_not_ready\`, \`service_unavailable\`, \`idempotency_key_in_use\`).

| Code | HTTP status | When |
|---|---|---|
| \`invalid_json\` | 400 | the body is not valid JSON |
| \`empty_body\` | 400 | the JSON body is empty |
| \`invalid_request\` | 400 | the body or URL does not have the protocol's shape |
| \`invalid_tensor\` | 400 | a tensor's data does not match its datatype and shape |
| \`unknown_input\` | 400 | an input the model does not declare |
| \`missing_input\` | 400 | an input the model needs is missing |
| \`duplicate_input\` | 400 | an input is given more than once |
| \`datatype_mismatch\` | 400 | an input's datatype differs from the model's |
| \`shape_mismatch\` | 400 | an input's shape differs from the model's |
| \`unknown_output\` | 400 | a requested output the model does not have |
| \`invalid_parameter\` | 400 | a request parameter (e.g. \`timeout\`) is out of range |
| \`invalid_idempotency_key\` | 400 | \`Idempotency-Key\` is not 1-255 visible ASCII characters |
| \`invalid_request_id\` | 400 | the request id in the URL is malformed |
| \`invalid_cursor\` | 400 | the \`cursor\` of \`GET /v1/requests\` is not one this API handed out, or was made for other filters |
| \`unauthenticated\` | 401 | no API key or token was sent |
| \`invalid_api_key\` | 401 | the API key is not in any Ready TenantQuota |
| \`invalid_token\` | 401 | the bearer token does not verify |
| \`tenant_unknown\` | 403 | the tenant has no TenantQuota in this installation |
| \`tenant_suspended\` | 403 | the tenant's TenantQuota has \`spec.suspend: true\` |
| \`model_not_allowed\` | 403 | the model or pipeline is not in the TenantQuota's \`spec.models\` |
| \`model_not_found\` | 404 | no InferenceModel or Pipeline has that name |
| \`model_version_not_found\` | 404 | the path names a version other than the one served (the resource's generation) |
| \`request_not_found\` | 404 | no request has that id |
| \`route_not_found\` | 404 | no such endpoint |
| \`request_timeout\` | 408 | the request did not arrive in time |
| \`idempotency_key_conflict\` | 409 | the \`Idempotency-Key\` was used for another model |
| \`idempotency_key_in_use\` | 409 | a request with this \`Idempotency-Key\` is still being submitted |
| \`request_finished\` | 409 | \`DELETE /v1/requests/{id}\` on a request that has already ended (succeeded, failed or cancelled) |
| \`request_cancelled\` | 409 | a synchronous or OpenAI-style answer for a request its tenant cancelled |
| \`body_too_large\` | 413 | the body is larger than the gateway accepts |
| \`unsupported_media_type\` | 415 | the body's content type is not accepted |
| \`target_not_runnable\` | 422 | the Pipeline cannot run in this runtime (\`NotRunnable\`) |
| \`request_exceeds_quota\` | 422 | one request reserves more tokens than a limit allows at all |
| \`inference_rejected\` | 422 | the worker refused the inputs |
| \`quota_exceeded\` | 429 | the tenant used up a TenantQuota limit for now |
| \`rate_limited\` | 429 | too many requests from this client |
| \`headers_too_large\` | 431 | the request headers are larger than the gateway accepts |
| \`internal_error\` | 500 | the gateway failed; it has been logged |
| \`inference_failed\` | 502 | the worker failed to run the model |
| \`queue_full\` | 503 | the model's queue reached \`spec.queue.maxLength\` (the server's back-pressure, not the tenant's quota) |
| \`model_unavailable\` | 503 | the model has no queue yet |
| \`model_not_ready\` | 503 | a model of the target is not ready to take requests |
| \`service_unavailable\` | 503 | RabbitMQ, Redis or PostgreSQL could not be reached; retry |
| \`sync_timeout\` | 504 | a synchronous infer's wait ran out; the request goes on: poll the \`request_id\` the answer names |
`;
