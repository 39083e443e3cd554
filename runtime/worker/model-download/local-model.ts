/**
 * The model config the engine loads: unchanged for files the pod already has (npm://, file://,
 * pvc://); for an https:// or s3:// source, the same config pointing at the verified download.
 */
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { ModelConfig } from "../../shared/contracts/index.js";
import type { Logger } from "../../shared/logger.js";
import { downloadModel, ModelSourceError } from "./download-model.js";
import { isRemoteUri } from "./remote-source.js";

export interface LocalModelOptions {
  /** spec.model.sha256 (TURNPIKE_MODEL_SHA256). */
  sha256?: string;
  /** The pod's emptyDir for downloads (TURNPIKE_MODEL_DOWNLOAD_DIR); default a folder under the temp dir. */
  dir?: string;
  /** AWS_* settings and credentials. */
  env: NodeJS.ProcessEnv;
  log: Logger;
  /** Extra trusted CA certificates (PEM), for tests; NODE_EXTRA_CA_CERTS in a pod. */
  ca?: string;
}

export async function localModel(model: ModelConfig, options: LocalModelOptions): Promise<ModelConfig> {
  if (!isRemoteUri(model.uri)) return model;
  if (!options.sha256) {
    throw new ModelSourceError(
      "ModelDownloadFailed",
      `model uri ${model.uri}: a downloaded model needs its sha256 (TURNPIKE_MODEL_SHA256, from spec.model.sha256)`,
    );
  }
  const path = await downloadModel({
    uri: model.uri,
    sha256: options.sha256,
    dir: options.dir ?? join(tmpdir(), "turnpike-models"),
    env: options.env,
    log: options.log,
    ...(options.ca ? { ca: options.ca } : {}),
  });
  return { ...model, uri: pathToFileURL(path).href };
}
