// Admin API errors: one class carrying the HTTP status and field errors, and the mapping of store errors to
// statuses, so every handler fails the same way and every error body has the same shape.
import { CertificateNotFoundError, TokenNotFoundError } from "../registry/enrollment-types.ts";
import {
  DeviceExistsError,
  DeviceNotFoundError,
  InvalidDeviceError,
  StoreConflictError,
  StoreUnavailableError,
} from "../registry/types.ts";

export interface FieldError {
  /** Where the problem is, e.g. `bindings[0].kind`; empty for the whole document. */
  readonly path: string;
  readonly message: string;
}

export interface ErrorBody {
  readonly message: string;
  readonly errors?: readonly FieldError[];
}

export class HttpError extends Error {
  override name = "HttpError";
  readonly status: number;
  readonly errors: readonly FieldError[] | undefined;
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    status: number,
    message: string,
    options: { errors?: readonly FieldError[]; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.status = status;
    this.errors = options.errors;
    this.headers = options.headers ?? {};
  }

  get body(): ErrorBody {
    return this.errors ? { message: this.message, errors: this.errors } : { message: this.message };
  }
}

/** The HttpError for a thrown value; undefined for unexpected errors (answered 500, details kept out). */
export function toHttpError(err: unknown): HttpError | undefined {
  if (err instanceof HttpError) return err;
  if (err instanceof DeviceNotFoundError) return new HttpError(404, err.message);
  if (err instanceof TokenNotFoundError || err instanceof CertificateNotFoundError) {
    return new HttpError(404, err.message);
  }
  if (err instanceof DeviceExistsError) return new HttpError(409, err.message);
  if (err instanceof StoreConflictError) return new HttpError(409, err.message);
  // The store's own checks, past the API's schema: the same answer as a schema failure.
  if (err instanceof InvalidDeviceError) return new HttpError(422, `Invalid device: ${err.message}`);
  if (err instanceof StoreUnavailableError) {
    return new HttpError(503, `Device store unavailable: ${err.message}`, {
      headers: { "retry-after": "5" },
    });
  }
  return undefined;
}

/** Field path in the config's notation: `bindings[0].kind`. */
export function formatFieldPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else if (typeof part === "string") out += out === "" ? part : `.${part}`;
  }
  return out;
}
