// Polls a condition in tests that wait for something asynchronous (a NOTIFY, a reconnect) with a deadline.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";

/** Waits until `predicate` holds, polling every 10 ms, failing after `ms`. */
export async function eventually(predicate: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > end) assert.fail(`not within ${ms} ms: ${what}`);
    await sleep(10);
  }
}
