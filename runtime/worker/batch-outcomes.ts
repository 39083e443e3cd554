/**
 * What happens to a model batch's outputs, request by request: each is finished (output tokens,
 * post-processing); one with route left goes to the next model's queue as that step's task; the
 * final results leave together through MessageSettler.publishResults (one message per answering
 * gateway); a request whose post-processing fails gets its failed result. Every message is acked
 * only once what it produced is confirmed.
 */
import type { ConsumeMessage } from "amqplib";
import { entryModel, names } from "../shared/contracts/index.js";
import type { Metrics } from "../shared/metrics.js";
import { encodeTaskBody } from "../shared/task-body.js";
import type { DecodedTensor } from "../shared/tensors.js";
import type { FinishedResult, MessageSettler } from "./message-settler.js";
import { finishRequest, type PreparedRequest, type ServedModel } from "./segment-runner.js";
import { toStepError } from "./step-error.js";
import { nextTask, succeededResult } from "./task-codec.js";

/** What publishing a batch's outcomes needs from its worker. */
export interface OutcomeContext {
  model: ServedModel;
  prefix: string;
  metrics: Metrics;
  settler: MessageSettler;
}

/** One request of a batch that ran, with its share of the outputs. */
export interface RanRequest {
  message: ConsumeMessage;
  request: PreparedRequest;
  outputs: DecodedTensor[];
}

/** Publishes the outcomes of `ran`, requests of one batch run (`run`: its time and size). */
export function publishOutcomes(
  ctx: OutcomeContext,
  ran: RanRequest[],
  run: { inferMs: number; batchSize: number },
): void {
  const { model, prefix, metrics, settler } = ctx;
  const finished: FinishedResult[] = [];
  try {
    for (const { message, request, outputs } of ran) {
      const { task, segment } = request;
      try {
        const outcome = finishRequest(model, request, outputs, run);
        metrics.tokensProcessed.inc(
          { model: model.runner.config.name, tenant: task.tenant },
          outcome.outputTokens,
        );
        const next = entryModel(segment.rest);
        if (next) {
          const body = encodeTaskBody(
            nextTask(task, segment.rest, outcome.outputs, outcome.outputTokens, outcome.timings),
          );
          settler.publishThenAck(message, names(prefix).modelQueue(next), body, task.requestId);
        } else {
          const result = succeededResult(task, outcome.outputs, outcome.outputTokens, outcome.timings);
          finished.push({ message, result, replyTo: task.replyTo });
        }
      } catch (error) {
        settler.fail(message, task, toStepError(error, "processor_error", "finishing the request"));
      }
    }
  } finally {
    settler.publishResults(finished);
  }
}
