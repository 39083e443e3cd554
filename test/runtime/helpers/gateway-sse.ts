/** Reads a Server-Sent Events response in tests: parsed events, comments, and when it ended. */

export interface SseEvent {
  event: string;
  id?: string;
  data: unknown;
}

export interface SseStream {
  events: SseEvent[];
  comments: string[];
  /** Resolves when an event satisfying `predicate` has arrived (or rejects when the stream ends first). */
  waitFor(predicate: (e: SseEvent) => boolean): Promise<SseEvent>;
  /** Resolves when the server ended the stream. */
  ended: Promise<void>;
  cancel(): Promise<void>;
}

/** Starts consuming `res` (a text/event-stream response) in the background. */
export function readSse(res: Response): SseStream {
  const events: SseEvent[] = [];
  const comments: string[] = [];
  const listeners: (() => void)[] = [];
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let finished = false;
  const ended = (async () => {
    let buffer = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut: number;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          parseBlock(buffer.slice(0, cut), events, comments);
          buffer = buffer.slice(cut + 2);
          for (const l of [...listeners]) l();
        }
      }
    } finally {
      finished = true;
      for (const l of [...listeners]) l();
    }
  })();
  return {
    events,
    comments,
    ended,
    cancel: () => reader.cancel(),
    waitFor(predicate) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = events.find(predicate);
          if (found) {
            listeners.splice(listeners.indexOf(check), 1);
            resolve(found);
          } else if (finished) {
            listeners.splice(listeners.indexOf(check), 1);
            reject(new Error(`stream ended without the event; got ${events.map((e) => e.event).join(", ")}`));
          }
        };
        listeners.push(check);
        check();
      });
    },
  };
}

function parseBlock(block: string, events: SseEvent[], comments: string[]): void {
  let event = "message";
  let id: string | undefined;
  const data: string[] = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) comments.push(line.slice(1).trim());
    else if (line.startsWith("event: ")) event = line.slice(7);
    else if (line.startsWith("id: ")) id = line.slice(4);
    else if (line.startsWith("data: ")) data.push(line.slice(6));
  }
  // Blocks without data (e.g. `retry:`) dispatch no event, as in EventSource.
  if (data.length > 0) events.push({ event, id, data: JSON.parse(data.join("\n")) });
}
