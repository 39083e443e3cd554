// The load generator's process (started by autocannon.ts with node alone, so plain JavaScript):
// autocannon's library on the options file and the body file's bytes. Not autocannon's CLI, which
// reads its --input as UTF-8 text and so replaced every byte of an OIP binary tensor that is not
// valid UTF-8. With `json: true` autocannon prints its result as the CLI's --json does.
//
//   node bench/lib/autocannon-run.mjs <options.json> <body file>
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const autocannon = createRequire(import.meta.url)("autocannon");
const [optionsPath, bodyPath] = process.argv.slice(2);
const options = JSON.parse(readFileSync(optionsPath, "utf8"));
await autocannon({ ...options, body: readFileSync(bodyPath), json: true });
