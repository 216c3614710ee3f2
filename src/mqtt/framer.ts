// Cuts a client's byte stream into whole MQTT control packets (fixed header: a type byte and a remaining
// length of 1 to 4 bytes), refusing a packet as soon as its header says it is over the limit, so that a
// connection never buffers more than one packet of at most `maxBytes`. Allowed packets are forwarded as the
// exact bytes the client sent.

export type Frame = { readonly type: number; readonly bytes: Buffer };

export class FrameError extends Error {
  override name = "FrameError";
  /** Whether the packet was refused for its size (MQTT 5: 0x95 Packet too large) rather than malformed. */
  readonly tooLarge: boolean;
  constructor(message: string, tooLarge: boolean) {
    super(message);
    this.tooLarge = tooLarge;
  }
}

export class Framer {
  #maxBytes: number;
  #pending: Buffer[] = [];
  #pendingBytes = 0;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  /** The limit from now on (a CONNECT may be held to a smaller one than the packets after it). */
  set maxBytes(value: number) {
    this.#maxBytes = value;
  }

  /** The whole packets `chunk` completes, in order; throws FrameError for a malformed or oversized one. */
  push(chunk: Buffer): Frame[] {
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
    let data = this.#pending.length === 1 ? chunk : Buffer.concat(this.#pending, this.#pendingBytes);
    const frames: Frame[] = [];
    for (;;) {
      const header = readHeader(data);
      if (header === undefined) break;
      const total = header.headerBytes + header.remaining;
      if (total > this.#maxBytes) {
        throw new FrameError(`a packet of ${total} bytes is over the limit of ${this.#maxBytes}`, true);
      }
      if (data.length < total) break;
      frames.push({ type: (data[0] ?? 0) >> 4, bytes: data.subarray(0, total) });
      data = data.subarray(total);
    }
    this.#pending = data.length === 0 ? [] : [data];
    this.#pendingBytes = data.length;
    return frames;
  }
}

/** The fixed header's size and the remaining length, or undefined while incomplete. */
function readHeader(data: Buffer): { headerBytes: number; remaining: number } | undefined {
  if (data.length < 2) return undefined;
  if (data[0] === undefined || data[0] >> 4 === 0) throw new FrameError("packet type 0 is reserved", false);
  let remaining = 0;
  for (let i = 1; i <= 4; i++) {
    const byte = data[i];
    if (byte === undefined) return undefined;
    remaining += (byte & 0x7f) * 128 ** (i - 1);
    if ((byte & 0x80) === 0) return { headerBytes: i + 1, remaining };
  }
  throw new FrameError("the remaining length is longer than 4 bytes", false);
}
