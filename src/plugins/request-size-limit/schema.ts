// request-size-limit's config: the largest body a request may announce.
import { z } from "zod";

export const requestSizeLimitSchema = z.strictObject({
  /** Largest request body, in bytes. */
  maxBytes: z.number().int().min(0).max(1_073_741_824),
  /**
   * A request with a body of unannounced length (chunked HTTP/1.1, HTTP/2 without content-length) gets 411:
   * its size cannot be known before bytes would go to the upstream. false lets it through unchecked.
   */
  requireContentLength: z.boolean().default(true),
});

export type RequestSizeLimitConfig = z.output<typeof requestSizeLimitSchema>;
