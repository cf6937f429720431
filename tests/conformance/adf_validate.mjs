#!/usr/bin/env node
// Judges Atlassian Document Format documents against the official ADF JSON schema
// (`@atlaskit/adf-schema`, dist/json-schema/v1/full.json).
//
// Usage: node adf_validate.mjs DOCS.json
//   DOCS.json holds a JSON array of ADF documents.
// Prints one JSON array to stdout, one entry per document, in order:
//   [{"valid": true, "errors": []}, {"valid": false, "errors": ["/content/0: ..."]}]
// Exit status: 0 when every document was judged (valid or not), 2 on a usage or input
// error (message on stderr).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const here = dirname(fileURLToPath(import.meta.url));

function fail(message) {
  process.stderr.write(`adf_validate: ${message}\n`);
  process.exit(2);
}

const schemaPath = join(here, "node_modules", "@atlaskit", "adf-schema", "dist", "json-schema", "v1", "full.json");

let schema;
try {
  schema = JSON.parse(readFileSync(schemaPath, "utf8"));
} catch (e) {
  fail(`cannot read the ADF schema at ${schemaPath} (run setup.sh): ${e.message}`);
}

// Pick the Ajv class that implements the schema's own draft.
const draft = String(schema.$schema || "");
let Ajv;
if (draft.includes("draft-04")) {
  Ajv = require("ajv-draft-04");
} else if (draft.includes("draft-07") || draft.includes("draft-06") || draft === "") {
  Ajv = require("ajv");
} else if (draft.includes("2019-09")) {
  Ajv = require("ajv/dist/2019");
} else if (draft.includes("2020-12")) {
  Ajv = require("ajv/dist/2020");
} else {
  fail(`unsupported JSON Schema draft ${draft}`);
}
Ajv = Ajv.default || Ajv;

// allErrors gives a complete picture; strict off because the published schema carries
// annotation keywords that are not part of draft-04.
const ajv = new Ajv({ allErrors: true, strict: false });
const validate = ajv.compile(schema);

const inputPath = process.argv[2];
if (!inputPath) {
  fail("usage: node adf_validate.mjs DOCS.json");
}
let docs;
try {
  docs = JSON.parse(readFileSync(inputPath, "utf8"));
} catch (e) {
  fail(`cannot read ${inputPath}: ${e.message}`);
}
if (!Array.isArray(docs)) {
  fail(`${inputPath} must hold a JSON array of ADF documents`);
}

// With anyOf over dozens of node types, ajv reports every failed branch. Merge the enum
// failures of one location into a single line, drop duplicates, and put the deepest
// locations first since they point closest to the fault.
function valueAt(doc, pointer) {
  let node = doc;
  for (const raw of pointer.split("/").slice(1)) {
    const key = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (node === null || typeof node !== "object" || !(key in node)) {
      return undefined;
    }
    node = node[key];
  }
  return node;
}

function describe(errors, doc) {
  const enums = new Map();
  const other = [];
  for (const e of errors || []) {
    const at = e.instancePath || "/";
    if (e.keyword === "enum" && e.params && Array.isArray(e.params.allowedValues)) {
      const set = enums.get(at) || new Set();
      e.params.allowedValues.forEach((v) => set.add(JSON.stringify(v)));
      enums.set(at, set);
    } else {
      const params = e.params && Object.keys(e.params).length ? ` ${JSON.stringify(e.params)}` : "";
      other.push([at, `${at}: ${e.message}${params}`, e.keyword]);
    }
  }
  // An enum failure whose value some other branch allows is noise from the branches for
  // other node types: the value itself is fine.
  const lines = [...enums]
    .filter(([at, set]) => !set.has(JSON.stringify(valueAt(doc, at === "/" ? "" : at))))
    .map(([at, set]) => [at, `${at}: must be one of ${[...set].join(", ")}`, at.endsWith("/type") ? "type-enum" : "enum"]);
  lines.push(...other);
  // Most telling first: violated bounds and patterns, then missing or extra properties,
  // then node-type mismatches, deepest location first within each group.
  const rank = { "type-enum": 2, anyOf: 3, oneOf: 3 };
  const weight = (k) => (k in rank ? rank[k] : k === "required" || k === "additionalProperties" ? 1 : 0);
  lines.sort((a, b) => weight(a[2]) - weight(b[2]) || b[0].split("/").length - a[0].split("/").length);
  return [...new Set(lines.map(([, line]) => line))].slice(0, 20);
}

const results = docs.map((doc) => {
  const valid = validate(doc) === true;
  return { valid, errors: valid ? [] : describe(validate.errors, doc) };
});
process.stdout.write(JSON.stringify(results) + "\n");
