// The error type for user mistakes and bad input files: the CLI prints its message as one line, no stack.
export class PkiError extends Error {
  override name = "PkiError";
}
