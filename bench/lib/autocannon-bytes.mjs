// The load generator for a body of raw bytes (OIP binary tensors): autocannon's CLI reads --input
// as UTF-8 text, which replaces every byte that is not valid UTF-8 and so corrupts the tensor. This
// runs the same library on the file's bytes; with `json: true` autocannon prints its result as the
// CLI's --json does. Plain JavaScript: autocannon.ts starts it with node alone.
//
//   node bench/lib/autocannon-bytes.mjs <options.json> <body file>
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const autocannon = createRequire(import.meta.url)("autocannon");
const [optionsPath, bodyPath] = process.argv.slice(2);
const options = JSON.parse(readFileSync(optionsPath, "utf8"));
await autocannon({ ...options, body: readFileSync(bodyPath), json: true });
