// request-size-limit: a body over the limit is refused (413) from the request's headers, before any of its
// bytes reach the upstream; a body of unannounced length is refused (411) unless the config lets it through.
import type { AccessOutcome, Plugin, PluginFactory, PluginRequest } from "../plugin.ts";
import { type RequestSizeLimitConfig, requestSizeLimitSchema } from "./schema.ts";

function hasUnannouncedBody(request: PluginRequest): boolean {
  const { req } = request;
  if (req.headers["transfer-encoding"] !== undefined) return true;
  return "stream" in req && !req.stream.endAfterHeaders;
}

function create(config: RequestSizeLimitConfig): Plugin {
  return {
    name: "request-size-limit",
    access(request): AccessOutcome | undefined {
      const length = request.req.headers["content-length"];
      if (length !== undefined) {
        const bytes = Number(length);
        if (Number.isSafeInteger(bytes) && bytes <= config.maxBytes) return undefined;
        return {
          kind: "deny",
          reason: "request_too_large",
          detail: `a body of ${length} bytes, over the limit of ${config.maxBytes}`,
        };
      }
      if (config.requireContentLength && hasUnannouncedBody(request)) {
        return {
          kind: "deny",
          reason: "length_required",
          detail: `a body without content-length on a route limited to ${config.maxBytes} bytes`,
        };
      }
      return undefined;
    },
  };
}

export const requestSizeLimit: PluginFactory<typeof requestSizeLimitSchema> = {
  name: "request-size-limit",
  priority: 30,
  schema: requestSizeLimitSchema,
  create,
};
