// The logging the revocation service needs: a pino Logger fits, and so does a test's recorder.
export interface RevocationLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}
