// Validates Kubernetes objects against the openAPIV3Schema of the CRDs that define them, as the API
// server does with strict field validation (`kubectl apply --validate=strict`): a field the schema
// does not list is an error, not silently pruned.
//
// node crd.mjs INPUT.json, where INPUT is {"crds": [<CRD as JSON>…], "docs": [{"name", "doc"}…]};
// prints {"<name>": ["<path>: <message>", …], …} with an entry for every doc (empty: valid).
import { readFileSync } from "node:fs";
import Ajv from "ajv";

function strict(schema) {
  if (Array.isArray(schema)) return schema.map(strict);
  if (schema === null || typeof schema !== "object") return schema;
  const out = {};
  for (const [k, v] of Object.entries(schema)) out[k] = strict(v);
  if (
    out.type === "object" &&
    out.properties !== undefined &&
    out.additionalProperties === undefined &&
    out["x-kubernetes-preserve-unknown-fields"] !== true
  ) {
    out.additionalProperties = false;
  }
  return out;
}

const input = JSON.parse(readFileSync(process.argv[2], "utf8"));
// The CRDs' patterns are Go (RE2) regexps; the one construct of theirs JavaScript lacks is the
// leading case-insensitive flag `(?i)`.
function goRegExp(pattern, flags) {
  if (pattern.includes("(?i)")) return new RegExp(pattern.replaceAll("(?i)", ""), flags + "i");
  return new RegExp(pattern, flags);
}
goRegExp.code = 'new RegExp';

// strict: false lets Ajv pass over the x-kubernetes-* keywords; formats (int32, …) are types' business.
const ajv = new Ajv({
  allErrors: true,
  strict: false,
  validateFormats: false,
  code: { regExp: goRegExp },
});
const validators = new Map();
for (const crd of input.crds) {
  for (const v of crd.spec.versions) {
    const key = `${crd.spec.group}/${v.name} ${crd.spec.names.kind}`;
    validators.set(key, ajv.compile(strict(v.schema.openAPIV3Schema)));
  }
}
const result = {};
for (const { name, doc } of input.docs) {
  const key = `${doc.apiVersion} ${doc.kind}`;
  const validate = validators.get(key);
  if (!validate) {
    result[name] = [`no CRD defines ${key}`];
  } else if (validate(doc)) {
    result[name] = [];
  } else {
    result[name] = validate.errors.map((e) => {
      const extra = e.params.additionalProperty ? ` (${e.params.additionalProperty})` : "";
      return `${e.instancePath || "/"}: ${e.message}${extra}`;
    });
  }
}
process.stdout.write(JSON.stringify(result, null, 1) + "\n");
