// A bounded least-recently-used map with O(1) hits. Recency lives in a doubly linked list beside the Map,
// not in the Map's insertion order: refreshing a key by delete + set leaves a tombstone in V8's hash chain
// each time, and a hot key's lookups then cost O(entries) (~26 µs at 10,000 entries) until the next rehash.

interface Node<V> {
  readonly key: string;
  value: V;
  /** Towards the most recently used end. */
  newer: Node<V> | undefined;
  older: Node<V> | undefined;
}

export class Lru<V> {
  readonly #map = new Map<string, Node<V>>();
  readonly #max: number;
  #newest: Node<V> | undefined;
  #oldest: Node<V> | undefined;

  constructor(maxEntries: number) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new RangeError(`maxEntries must be a positive integer, got ${maxEntries}`);
    }
    this.#max = maxEntries;
  }

  get size(): number {
    return this.#map.size;
  }

  /** The value, marked most recently used; undefined when absent. */
  get(key: string): V | undefined {
    const node = this.#map.get(key);
    if (node === undefined) return undefined;
    this.#touch(node);
    return node.value;
  }

  /** Inserts or replaces, as most recently used; drops the least recently used entry beyond the bound. */
  set(key: string, value: V): void {
    const node = this.#map.get(key);
    if (node !== undefined) {
      node.value = value;
      this.#touch(node);
      return;
    }
    const added: Node<V> = { key, value, newer: undefined, older: this.#newest };
    if (this.#newest) this.#newest.newer = added;
    this.#newest = added;
    this.#oldest ??= added;
    this.#map.set(key, added);
    if (this.#map.size > this.#max && this.#oldest) this.delete(this.#oldest.key);
  }

  delete(key: string): boolean {
    const node = this.#map.get(key);
    if (node === undefined) return false;
    this.#unlink(node);
    this.#map.delete(key);
    return true;
  }

  clear(): void {
    this.#map.clear();
    this.#newest = undefined;
    this.#oldest = undefined;
  }

  #unlink(node: Node<V>): void {
    if (node.newer) node.newer.older = node.older;
    else this.#newest = node.older;
    if (node.older) node.older.newer = node.newer;
    else this.#oldest = node.newer;
    node.newer = undefined;
    node.older = undefined;
  }

  #touch(node: Node<V>): void {
    if (this.#newest === node) return;
    this.#unlink(node);
    node.older = this.#newest;
    if (this.#newest) this.#newest.newer = node;
    this.#newest = node;
    this.#oldest ??= node;
  }
}
