// Topic allow-lists of an MQTT listener, per connection: the configured filters with `{deviceId}` and
// `{group}` filled in for the device (one filter per group), then MQTT matching. A PUBLISH topic must match
// an allowed filter; a SUBSCRIBE filter must be covered by one, that is every topic it can match must be
// allowed (so `devices/+/status` is not covered by `devices/{deviceId}/#`). A shared subscription
// (`$share/<group>/<filter>`) is judged by its filter.

/** Characters that would change a filter's meaning if a device id or group brought them in (and NUL). */
const UNSAFE_CHARACTERS = ["/", "+", "#", "\u0000"];

export class TopicAcl {
  readonly #publish: readonly string[][];
  readonly #subscribe: readonly string[][];

  constructor(
    patterns: { readonly publish: readonly string[]; readonly subscribe: readonly string[] },
    device: { readonly deviceId: string | undefined; readonly groups: readonly string[] },
  ) {
    this.#publish = expand(patterns.publish, device);
    this.#subscribe = expand(patterns.subscribe, device);
  }

  /** Whether the device may publish to `topic` (a topic name, without wildcards). */
  mayPublish(topic: string): boolean {
    if (topic === "" || topic.includes("+") || topic.includes("#") || topic.includes("\u0000")) return false;
    const levels = topic.split("/");
    return this.#publish.some((filter) => matches(filter, levels));
  }

  /** Whether the device may subscribe to `filter` (wildcards allowed). */
  maySubscribe(filter: string): boolean {
    const own = sharedFilter(filter);
    if (own === undefined || !isValidFilter(own)) return false;
    const levels = own.split("/");
    return this.#subscribe.some((allowed) => covers(allowed, levels));
  }
}

/** The filters with placeholders filled in; a filter whose placeholder has no safe value is left out. */
function expand(
  patterns: readonly string[],
  device: { readonly deviceId: string | undefined; readonly groups: readonly string[] },
): string[][] {
  const out: string[][] = [];
  const deviceId = device.deviceId !== undefined && isSafe(device.deviceId) ? device.deviceId : undefined;
  const groups = device.groups.filter(isSafe);
  for (const pattern of patterns) {
    if (pattern.includes("{deviceId}") && deviceId === undefined) continue;
    const withDevice = deviceId === undefined ? pattern : pattern.replaceAll("{deviceId}", deviceId);
    const values = withDevice.includes("{group}")
      ? groups.map((g) => withDevice.replaceAll("{group}", g))
      : [withDevice];
    for (const value of values) out.push(value.split("/"));
  }
  return out;
}

function isSafe(value: string): boolean {
  return value !== "" && !UNSAFE_CHARACTERS.some((c) => value.includes(c));
}

/** MQTT matching of a topic name against a filter (MQTT 5 §4.7): `$` topics only by filters naming `$`. */
function matches(filter: readonly string[], topic: readonly string[]): boolean {
  if (topic[0]?.startsWith("$") && (filter[0] === "+" || filter[0] === "#")) return false;
  for (let i = 0; i < filter.length; i++) {
    const level = filter[i];
    if (level === "#") return true;
    if (i >= topic.length) return false;
    if (level !== "+" && level !== topic[i]) return false;
  }
  return filter.length === topic.length;
}

/** Whether every topic `requested` can match is matched by `allowed`. */
function covers(allowed: readonly string[], requested: readonly string[]): boolean {
  if (requested[0]?.startsWith("$") && (allowed[0] === "+" || allowed[0] === "#")) return false;
  for (let i = 0; i < allowed.length; i++) {
    const a = allowed[i];
    if (a === "#") return true;
    const r = requested[i];
    if (r === undefined) return false;
    if (r === "#") return false;
    if (a === "+") continue;
    if (r === "+" || a !== r) return false;
  }
  return allowed.length === requested.length;
}

/** The filter of a shared subscription (`$share/<name>/<filter>`), or the filter itself; undefined if malformed. */
function sharedFilter(filter: string): string | undefined {
  if (!filter.startsWith("$share/")) return filter;
  const rest = filter.slice("$share/".length);
  const slash = rest.indexOf("/");
  if (slash <= 0) return undefined;
  const name = rest.slice(0, slash);
  if (name.includes("+") || name.includes("#")) return undefined;
  return rest.slice(slash + 1);
}

function isValidFilter(filter: string): boolean {
  if (filter === "" || filter.includes("\u0000")) return false;
  const levels = filter.split("/");
  return levels.every(
    (level, i) =>
      (!level.includes("#") || (level === "#" && i === levels.length - 1)) &&
      (!level.includes("+") || level === "+"),
  );
}
