// The one entry point to @peculiar/x509: it needs the reflect-metadata polyfill loaded first.
import "reflect-metadata";

export * as x509 from "@peculiar/x509";
