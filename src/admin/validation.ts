// Schemas of everything the admin API accepts (zod, as the config): device documents, patches and query
// strings. Objects are strict, so a misspelt field is an error with its path rather than silently ignored.
import { z } from "zod";
import { normalizeFingerprint } from "../identity/certificate.ts";
import { BINDING_KINDS, type Binding, DEVICE_STATUSES } from "../registry/types.ts";
import { decisionFilterFields } from "./console/decision-filter.ts";
import { type FieldError, formatFieldPath, HttpError } from "./errors.ts";

export const MAX_BINDINGS = 32;
export const MAX_GROUPS = 64;
export const MAX_METADATA_BYTES = 16 * 1024;
/** Levels of objects and arrays in metadata, the metadata object itself being level 1. */
export const MAX_METADATA_DEPTH = 8;
/** Object keys in metadata, counted at every level. */
export const MAX_METADATA_KEYS = 512;
export const MAX_LIST_LIMIT = 1000;
export const DEFAULT_LIST_LIMIT = 100;
export const DEFAULT_DECISIONS_LIMIT = 100;
export const MAX_DECISIONS_LIMIT = 100_000;

/** The syntax of a device id, everywhere one is given (admin API, import, `portcullis pki issue device`). */
export const DEVICE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,255}$/;
export const DEVICE_ID_EXPECTED =
  "expected 1 to 256 letters, digits, '.', '_', ':', '@' or '-', starting with a letter or digit";

export const deviceId = z.string().regex(DEVICE_ID_PATTERN, DEVICE_ID_EXPECTED);

export const deviceStatus = z.enum(DEVICE_STATUSES);

const groupName = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/,
    "expected 1 to 64 letters, digits, '.', '_', ':' or '-', starting with a letter or digit",
  );

/** Fingerprints are stored lower-case hex without separators; `AB:CD:…` as openssl prints them is accepted. */
function normaliseBinding(kind: Binding["kind"], value: string): string {
  return kind === "fingerprint" ? (normalizeFingerprint(value) ?? value) : value;
}

const BINDING_RULES: Record<Binding["kind"], { test: (v: string) => boolean; expected: string }> = {
  fingerprint: { test: (v) => /^[0-9a-f]{64}$/.test(v), expected: "a SHA-256 fingerprint: 64 hex digits" },
  spki: {
    test: (v) => /^[A-Za-z0-9+/]{43}=$/.test(v),
    expected: "a SHA-256 SPKI pin: 44 characters of base64",
  },
  cn: { test: (v) => v.length > 0 && v.length <= 256, expected: "a common name of 1 to 256 characters" },
  uri: { test: (v) => /^[a-z][a-z0-9+.-]*:\S+$/i.test(v) && v.length <= 1024, expected: "a URI" },
  dns: { test: (v) => /^[^\s]{1,253}$/.test(v), expected: "a DNS name" },
};

export const binding = z
  .strictObject({ kind: z.enum(BINDING_KINDS), value: z.string() })
  .transform((b, ctx): Binding => {
    const value = normaliseBinding(b.kind, b.value);
    const rule = BINDING_RULES[b.kind];
    if (!rule.test(value))
      ctx.addIssue({ code: "custom", path: ["value"], message: `expected ${rule.expected}` });
    return { kind: b.kind, value };
  });

/** Bindings, each kind:value once. */
const bindings = z
  .array(binding)
  .max(MAX_BINDINGS)
  .transform((list) => dedupeBindings(list));

export function dedupeBindings(list: readonly Binding[]): Binding[] {
  const seen = new Set<string>();
  return list.filter((b) => {
    const key = `${b.kind}:${b.value}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

const groups = z
  .array(groupName)
  .max(MAX_GROUPS)
  .transform((list) => [...new Set(list)]);

/**
 * What is wrong with the shape of a metadata object, or undefined: nesting deeper than
 * MAX_METADATA_DEPTH, more than MAX_METADATA_KEYS keys, more than MAX_METADATA_BYTES of JSON. The walk is
 * iterative and stops at the first problem, so a body nested 100,000 deep (which JSON.parse reads fine) is
 * refused in one pass; JSON.stringify, which recurses and overflows V8's stack some thousands of levels
 * down, only runs once the depth is known to be small.
 */
export function metadataProblem(metadata: object): string | undefined {
  const stack: { value: object; depth: number; path: string }[] = [{ value: metadata, depth: 1, path: "" }];
  let keys = 0;
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const { value, depth, path } = item;
    if (depth > MAX_METADATA_DEPTH) {
      // Keys may be long: the path in the message is cut, the answer stays small.
      const shown = path.length > 200 ? `${path.slice(0, 200)}…` : path;
      return `metadata nests objects and arrays at most ${MAX_METADATA_DEPTH} levels deep (metadata itself is level 1); metadata${shown} is level ${depth}`;
    }
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) {
        const child: unknown = value[i];
        if (typeof child === "object" && child !== null) {
          stack.push({ value: child, depth: depth + 1, path: `${path}[${i}]` });
        }
      }
      continue;
    }
    const names = Object.keys(value);
    keys += names.length;
    if (keys > MAX_METADATA_KEYS) {
      return `metadata holds at most ${MAX_METADATA_KEYS} keys, counted at every level`;
    }
    for (let i = names.length - 1; i >= 0; i--) {
      const name = names[i] as string;
      const child: unknown = (value as Record<string, unknown>)[name];
      if (typeof child !== "object" || child === null) continue;
      const step = /^[A-Za-z_$][\w$]*$/.test(name) ? `.${name}` : `[${JSON.stringify(name)}]`;
      stack.push({ value: child, depth: depth + 1, path: path + step });
    }
  }
  const bytes = Buffer.byteLength(JSON.stringify(metadata));
  if (bytes > MAX_METADATA_BYTES) {
    return `metadata is limited to ${MAX_METADATA_BYTES} bytes of JSON; this is ${bytes} bytes`;
  }
  return undefined;
}

// z.unknown() takes the values as they are (zod does not walk into them), so only metadataProblem walks.
const metadata = z.record(z.string(), z.unknown()).superRefine((m, ctx) => {
  const message = metadataProblem(m);
  if (message !== undefined) ctx.addIssue({ code: "custom", message });
});

/** POST /devices, and one line of an import. */
export const newDeviceInput = z.strictObject({
  id: deviceId,
  status: deviceStatus.optional(),
  bindings: bindings.optional(),
  groups: groups.optional(),
  metadata: metadata.optional(),
  /** PEM; its leaf becomes a fingerprint and an SPKI binding. */
  certificate: z
    .string()
    .max(64 * 1024)
    .optional(),
});
export type NewDeviceInput = z.output<typeof newDeviceInput>;

/** PATCH /devices/{id}: at least one change. */
export const devicePatchInput = z
  .strictObject({
    status: deviceStatus.optional(),
    bindings: bindings.optional(),
    groups: groups.optional(),
    metadata: metadata.optional(),
    ifVersion: z.number().int().positive().optional(),
  })
  .refine(
    (p) =>
      p.status !== undefined ||
      p.bindings !== undefined ||
      p.groups !== undefined ||
      p.metadata !== undefined,
    { message: "expected at least one of status, bindings, groups, metadata" },
  );

export const limitParam = (fallback: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, "expected a whole number")
    .transform(Number)
    .pipe(z.number().int().min(1).max(max))
    .optional()
    .transform((n) => n ?? fallback);

/** `binding=kind:value`; the value may itself hold colons (URIs), so only the first one splits. */
const bindingParam = z.string().transform((text, ctx) => {
  const colon = text.indexOf(":");
  const parsed = binding.safeParse(
    colon < 0 ? { kind: text, value: "" } : { kind: text.slice(0, colon), value: text.slice(colon + 1) },
  );
  if (parsed.success) return parsed.data;
  ctx.addIssue({
    code: "custom",
    message: `expected kind:value with kind one of ${BINDING_KINDS.join(", ")}: ${parsed.error.issues[0]?.message}`,
  });
  return z.NEVER;
});

/** A prefix of a device id: the characters an id may hold (so that no escaping is ever needed). */
export const idPrefixParam = z
  .string()
  .regex(/^[A-Za-z0-9._:@-]{1,256}$/, "expected 1 to 256 letters, digits, '.', '_', ':', '@' or '-'");

export const listQuery = z.strictObject({
  idPrefix: idPrefixParam.optional(),
  status: deviceStatus.optional(),
  group: groupName.optional(),
  binding: bindingParam.optional(),
  after: z.string().min(1).max(256).optional(),
  limit: limitParam(DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT),
});

export const decisionsQuery = z.strictObject({
  limit: limitParam(DEFAULT_DECISIONS_LIMIT, MAX_DECISIONS_LIMIT),
  ...decisionFilterFields,
});

export function fieldErrors(error: z.ZodError, prefix: readonly PropertyKey[] = []): FieldError[] {
  return error.issues.flatMap((issue) =>
    // One entry per unknown key, at the key's own path: the operator sees exactly which field to remove.
    issue.code === "unrecognized_keys"
      ? issue.keys.map((key) => ({
          path: formatFieldPath([...prefix, ...issue.path, key]),
          message: "unknown field",
        }))
      : [{ path: formatFieldPath([...prefix, ...issue.path]), message: issue.message }],
  );
}

/** Parses or throws the HttpError listing every problem with its field path. */
export function parseOrThrow<S extends z.ZodType>(
  schema: S,
  value: unknown,
  what: string,
  status: 400 | 422,
): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new HttpError(status, `Invalid ${what}`, { errors: fieldErrors(result.error) });
}

/** Query-string parameters as single strings; a repeated parameter is an error, not a silent pick. */
export function queryObject(search: URLSearchParams): Record<string, string> {
  const out: Record<string, string> = {};
  const errors: FieldError[] = [];
  for (const [key, value] of search) {
    if (Object.hasOwn(out, key)) errors.push({ path: key, message: "given more than once" });
    out[key] = value;
  }
  if (errors.length > 0) throw new HttpError(400, "Invalid query", { errors });
  return out;
}
