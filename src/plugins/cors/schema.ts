// cors's config: the origins a browser may call the route from, and what a preflight answers.
import { z } from "zod";

const origin = z.union([
  z.literal("*"),
  z
    .string()
    .regex(/^https?:\/\/[^/?#\s]+$/i, 'expected an origin such as "https://app.example.com" (no path) or "*"')
    .transform((o) => o.toLowerCase()),
]);
const method = z.string().regex(/^[A-Z]{1,20}$/, "expected an HTTP method in upper case");
const header = z.string().regex(/^[!#$%&'*+.^_`|~0-9a-z-]+$/i, "expected a header name");

export const corsSchema = z.strictObject({
  /** Exact origins (scheme://host[:port]) allowed, or "*" for any. */
  origins: z.array(origin).min(1).max(1000),
  /** Methods a preflight allows. */
  methods: z.array(method).min(1).default(["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"]),
  /** Request headers a preflight allows; absent: the ones the preflight asks for. */
  headers: z.array(header).optional(),
  /** Response headers the browser may read besides the CORS-safelisted ones. */
  exposeHeaders: z.array(header).optional(),
  /** Access-Control-Allow-Credentials: true (with "*", the request's origin is echoed instead of "*"). */
  credentials: z.boolean().default(false),
  /** How long a browser may cache a preflight, in seconds. */
  maxAge: z.number().int().min(0).max(86_400).optional(),
});

export type CorsConfig = z.output<typeof corsSchema>;
