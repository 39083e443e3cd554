// Part of `npm run build`: copies the files tsc does not emit (SQL migrations, JSON, Lua, ...) from
// operator/ and runtime/ into dist/, next to the compiled modules that find them through
// import.meta.url. Tests and TypeScript sources are left out.
// Usage: node docker/copy-assets.mjs [outDir]   (default: dist/ of the repository)
import { cpSync, mkdirSync, readdirSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = resolve(process.argv[2] ?? join(root, "dist"));
const skip = /\.(ts|mts|cts)$/;

function copyAssets(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      copyAssets(path);
    } else if (entry.isFile() && !skip.test(entry.name)) {
      const target = join(out, relative(root, path));
      mkdirSync(dirname(target), { recursive: true });
      cpSync(path, target);
      console.log(`asset ${relative(process.cwd(), target)}`);
    }
  }
}

for (const top of ["operator", "runtime"]) copyAssets(join(root, top));
