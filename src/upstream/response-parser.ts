/**
 * A strict, incremental HTTP/1.1 response parser (RFC 9112). Anything ambiguous about where
 * the message ends (Content-Length with Transfer-Encoding, a bad or conflicting
 * Content-Length, obs-fold, bare CR/LF, an oversized header section) is a `ResponseParseError`:
 * the proxy answers 502 and discards the connection, never guessing at framing.
 */
import { HOP_BY_HOP as HOP_BY_HOP_HEADERS } from "../lib/hop-by-hop.ts";

export class ResponseParseError extends Error {
  override readonly name = "ResponseParseError";
}

/** Hop-by-hop response headers describe the upstream connection, not the response. */
const HOP_BY_HOP = new Set(HOP_BY_HOP_HEADERS);
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-5]\d\d)(?: ([^\x00-\x08\x0a-\x1f\x7f]*))?$/;
const BAD_BYTES = /[\x00\x7f]|\r(?!\n)|(?<!\r)\n/;
const DIGITS = /^\d{1,15}$/;
const CHUNK_SIZE = /^([0-9a-fA-F]{1,12})[ \t]*(?:;[^\x00-\x08\x0a-\x1f\x7f]*)?$/;
/** Longest chunk-size line (size and extensions) accepted. */
const MAX_CHUNK_LINE = 4096;

const latin1 = new TextDecoder("latin1");
/** For ASCII-only bytes (the common head): the same text, and Bun decodes UTF-8 ~4x faster than "latin1". */
const ascii = new TextDecoder();

/** Bytes as ISO-8859-1 text: WHATWG's "latin1" is windows-1252, which maps 0x80-0x9f elsewhere. */
function decodeLatin1(bytes: Uint8Array): string {
  const text = latin1.decode(bytes);
  if (!/[\u0100-\uffff]/.test(text)) return text;
  let out = "";
  for (let i = 0; i < bytes.length; i += 4096) out += String.fromCharCode(...bytes.subarray(i, i + 4096));
  return out;
}

/**
 * A response head's bytes as text, refusing a NUL, DEL or another control character (HTAB
 * aside) and any CR or LF not in a CRLF pair: one pass over the bytes, no regex.
 */
function headText(bytes: Uint8Array): string {
  let high = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b >= 0x20) {
      if (b === 0x7f) throw new ResponseParseError("a control character in the response head");
      if (b >= 0x80) high = true;
    } else if (b === 13 && bytes[i + 1] === 10) i++;
    else if (b !== 9) throw new ResponseParseError("a bare CR, LF or control character in the response head");
  }
  return high ? decodeLatin1(bytes) : ascii.decode(bytes);
}

type BodyFraming = "none" | "length" | "chunked" | "close";

export interface ResponseHead {
  readonly status: number;
  readonly statusText: string;
  /** End-to-end headers as [name, value] pairs, names lower-cased, hop-by-hop ones removed. */
  readonly headers: [string, string][];
  readonly framing: BodyFraming;
  /** The body's length when `framing` is "length". */
  readonly length: number;
  /** The upstream allows another request on this connection. */
  readonly keepAlive: boolean;
}

/** Lower-cased header names by their spelling on the wire, once checked as tokens (bounded: names come from upstreams). */
const names = new Map<string, string>();
const NAMES_MAX = 512;

/** A field name as a lower-case token; one Map lookup for a name seen before. */
function fieldName(raw: string): string {
  let name = names.get(raw);
  if (name !== undefined) return name;
  if (!TOKEN.test(raw)) throw new ResponseParseError("an invalid header name");
  name = raw.toLowerCase();
  if (names.size < NAMES_MAX) names.set(raw, name);
  return name;
}

/** Field names as most servers spell them, by length: matched in place, without slicing the name out. */
const COMMON_NAMES: (readonly [spelling: string, name: string])[][] = [];
for (const name of [
  "content-length",
  "content-type",
  "date",
  "server",
  "connection",
  "transfer-encoding",
  "keep-alive",
  "cache-control",
  "etag",
  "last-modified",
]) {
  const capitalised = name.replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase());
  (COMMON_NAMES[name.length] ??= []).push([capitalised, name], [name, name]);
}

/** The lower-case name of the field between `from` and `colon`. */
function fieldNameAt(text: string, from: number, colon: number): string {
  const candidates = COMMON_NAMES[colon - from];
  if (candidates) for (const [spelling, name] of candidates) if (text.startsWith(spelling, from)) return name;
  return fieldName(text.slice(from, colon));
}

/** Parses one response head (status line and fields, without the final empty line). */
function parseHead(text: string, requestMethod: string): ResponseHead {
  let eol = text.indexOf("\r\n");
  const statusLine = eol < 0 ? text : text.slice(0, eol);
  let code: number;
  let statusText: string;
  let http11: boolean;
  if (statusLine === "HTTP/1.1 200 OK") {
    // The common answer, without a regex match and its captures.
    code = 200;
    statusText = "OK";
    http11 = true;
  } else {
    const status = STATUS_LINE.exec(statusLine);
    if (!status) throw new ResponseParseError("a malformed status line");
    code = Number(status[2]);
    statusText = status[3] ?? "";
    http11 = status[1] === "1";
  }
  const headers: [string, string][] = [];
  let contentLength = -1;
  let chunked = false;
  let connection: string | undefined;
  while (eol >= 0) {
    const from = eol + 2;
    eol = text.indexOf("\r\n", from);
    const to = eol < 0 ? text.length : eol;
    const colon = text.indexOf(":", from);
    // A line starting with whitespace is obs-fold; a name with whitespace is invalid: both lack a token before ':'.
    if (colon <= from || colon >= to) {
      const first = text.charCodeAt(from);
      throw new ResponseParseError(from < to && (first === 32 || first === 9) ? "an obs-folded header line" : "a header line without a name");
    }
    const name = fieldNameAt(text, from, colon);
    // The value without the optional whitespace (SP, HTAB) around it, sliced once.
    let start = colon + 1;
    let end = to;
    while (start < end && (text.charCodeAt(start) === 32 || text.charCodeAt(start) === 9)) start++;
    while (end > start && (text.charCodeAt(end - 1) === 32 || text.charCodeAt(end - 1) === 9)) end--;
    const value = text.slice(start, end);
    if (name === "content-length") {
      const length = contentLengthOf(value);
      if (contentLength >= 0 && contentLength !== length) throw new ResponseParseError("conflicting Content-Length headers");
      contentLength = length;
      headers.push([name, value.length === String(length).length ? value : String(length)]);
      continue;
    }
    if (HOP_BY_HOP.has(name)) {
      if (name === "transfer-encoding") {
        if (chunked || value.toLowerCase() !== "chunked") throw new ResponseParseError(`an unsupported Transfer-Encoding "${value}"`);
        chunked = true;
      } else if (name === "connection") connection = connection === undefined ? value : `${connection}, ${value}`;
      continue;
    }
    headers.push([name, value]);
  }
  if (chunked && contentLength >= 0) throw new ResponseParseError("both Content-Length and Transfer-Encoding");
  let keepAlive = http11;
  let listed: string[] | undefined;
  const lower = connection?.toLowerCase();
  if (lower === "keep-alive") keepAlive = true;
  else if (lower === "close") keepAlive = false;
  else if (lower !== undefined) {
    const tokens = lower.split(",").map((t) => t.trim());
    keepAlive = !tokens.includes("close") && (keepAlive || tokens.includes("keep-alive"));
    listed = tokens.filter((t) => t && t !== "close" && t !== "keep-alive");
  }
  const kept = listed?.length ? headers.filter(([name]) => !listed.includes(name)) : headers;
  let framing: BodyFraming;
  if (requestMethod === "HEAD" || code < 200 || code === 204 || code === 304) framing = "none";
  else if (chunked) framing = "chunked";
  else if (contentLength >= 0) framing = "length";
  else framing = "close";
  if (framing === "length" && contentLength === 0) framing = "none";
  return {
    status: code,
    statusText,
    headers: kept,
    framing,
    length: framing === "length" ? contentLength : 0,
    keepAlive: keepAlive && framing !== "close",
  };
}

/** A Content-Length value: digits, or a list of identical digits ("5, 5", RFC 9110 §8.6). */
function contentLengthOf(value: string): number {
  if (DIGITS.test(value)) return Number(value);
  const parts = value.split(",").map((p) => p.trim());
  if (parts.every((p) => DIGITS.test(p) && Number(p) === Number(parts[0]))) return Number(parts[0]);
  throw new ResponseParseError("an invalid Content-Length");
}

export interface ParserEvents {
  /** A final (non-1xx) response head. */
  head(head: ResponseHead): void;
  /** Body bytes (a view of the received chunk: the receiver may keep it). */
  body(bytes: Uint8Array): void;
  /** The message ended; `rest` holds bytes received past it (a protocol error unless empty). */
  end(rest: Uint8Array | undefined): void;
}

const enum State {
  Head,
  Length,
  ChunkSize,
  ChunkData,
  ChunkDataEnd,
  Trailers,
  Close,
  Done,
}

const EMPTY = new Uint8Array(0);

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a, 0);
  out.set(b, a.byteLength);
  return out;
}

/** Index of the first CRLF CRLF in `bytes` at or after `from`, or -1. */
function headEnd(bytes: Uint8Array, from: number): number {
  for (let i = from; i + 3 < bytes.length; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) return i;
  }
  return -1;
}

/** Index of the first CRLF in `bytes` at or after `from`, or -1. */
function lineEnd(bytes: Uint8Array, from: number): number {
  for (let i = from; i + 1 < bytes.length; i++) if (bytes[i] === 13 && bytes[i + 1] === 10) return i;
  return -1;
}

/** One response at a time; `start` before each. */
export class ResponseParser {
  private state = State.Done;
  private method = "GET";
  private pending: Uint8Array = EMPTY;
  private scanned = 0;
  private remaining = 0;
  private trailerBytes = 0;

  constructor(
    private readonly events: ParserEvents,
    /** Largest accepted header section (and trailer section), in bytes. */
    private readonly maxHeadBytes: number,
  ) {}

  start(method: string): void {
    this.state = State.Head;
    this.method = method;
    this.pending = EMPTY;
    this.scanned = 0;
  }

  get inBody(): boolean {
    return this.state !== State.Head && this.state !== State.Done;
  }

  get done(): boolean {
    return this.state === State.Done;
  }

  /** The connection ended: the end of a close-delimited body, an error anywhere else. */
  eof(): void {
    if (this.state === State.Close) {
      this.state = State.Done;
      this.events.end(undefined);
      return;
    }
    if (this.state !== State.Done)
      throw new ResponseParseError(
        this.state === State.Head ? "the upstream closed the connection before a response" : "the upstream closed the connection mid-body",
      );
  }

  push(chunk: Uint8Array): void {
    const bytes = this.pending.byteLength ? concat(this.pending, chunk) : chunk;
    this.pending = EMPTY;
    let at = 0;
    while (at < bytes.byteLength) {
      switch (this.state) {
        case State.Head: {
          const end = headEnd(bytes, Math.max(at, this.scanned - 3));
          if (end < 0) {
            if (bytes.byteLength - at > this.maxHeadBytes) throw new ResponseParseError(`a response header section over ${this.maxHeadBytes} bytes`);
            this.pending = bytes.subarray(at);
            this.scanned = this.pending.byteLength;
            return;
          }
          if (end - at > this.maxHeadBytes) throw new ResponseParseError(`a response header section over ${this.maxHeadBytes} bytes`);
          const head = parseHead(headText(bytes.subarray(at, end)), this.method);
          at = end + 4;
          this.scanned = 0;
          if (head.status < 200) {
            if (head.status === 101) throw new ResponseParseError("an unrequested protocol switch (101)");
            continue; // 1xx: informational, the final response follows
          }
          this.events.head(head);
          if (head.framing === "none") {
            this.state = State.Done;
            this.events.end(at < bytes.byteLength ? bytes.subarray(at) : undefined);
            return;
          }
          this.state = head.framing === "length" ? State.Length : head.framing === "chunked" ? State.ChunkSize : State.Close;
          this.remaining = head.length;
          continue;
        }
        case State.Length: {
          const n = Math.min(this.remaining, bytes.byteLength - at);
          this.events.body(at === 0 && n === bytes.byteLength ? bytes : bytes.subarray(at, at + n));
          at += n;
          this.remaining -= n;
          if (this.remaining === 0) {
            this.state = State.Done;
            this.events.end(at < bytes.byteLength ? bytes.subarray(at) : undefined);
            return;
          }
          continue;
        }
        case State.Close:
          this.events.body(at === 0 ? bytes : bytes.subarray(at));
          return;
        case State.ChunkSize: {
          const end = lineEnd(bytes, at);
          if (end < 0) {
            if (bytes.byteLength - at > MAX_CHUNK_LINE) throw new ResponseParseError("a chunk size line too long");
            this.pending = bytes.subarray(at);
            return;
          }
          const line = decodeLatin1(bytes.subarray(at, end));
          const size = CHUNK_SIZE.exec(line);
          if (!size) throw new ResponseParseError("a malformed chunk size line");
          at = end + 2;
          this.remaining = parseInt(size[1]!, 16);
          if (this.remaining === 0) {
            this.state = State.Trailers;
            this.trailerBytes = 0;
          } else this.state = State.ChunkData;
          continue;
        }
        case State.ChunkData: {
          const n = Math.min(this.remaining, bytes.byteLength - at);
          this.events.body(bytes.subarray(at, at + n));
          at += n;
          this.remaining -= n;
          if (this.remaining === 0) this.state = State.ChunkDataEnd;
          continue;
        }
        case State.ChunkDataEnd: {
          if (bytes.byteLength - at < 2) {
            this.pending = bytes.subarray(at);
            return;
          }
          if (bytes[at] !== 13 || bytes[at + 1] !== 10) throw new ResponseParseError("chunk data not followed by CRLF");
          at += 2;
          this.state = State.ChunkSize;
          continue;
        }
        case State.Trailers: {
          // Trailer fields are read and dropped: a streamed web Response cannot carry them.
          const end = lineEnd(bytes, at);
          if (end < 0) {
            if (this.trailerBytes + bytes.byteLength - at > this.maxHeadBytes)
              throw new ResponseParseError(`a trailer section over ${this.maxHeadBytes} bytes`);
            this.pending = bytes.subarray(at);
            return;
          }
          const line = decodeLatin1(bytes.subarray(at, end));
          this.trailerBytes += end - at + 2;
          if (this.trailerBytes > this.maxHeadBytes) throw new ResponseParseError(`a trailer section over ${this.maxHeadBytes} bytes`);
          at = end + 2;
          if (line === "") {
            this.state = State.Done;
            this.events.end(at < bytes.byteLength ? bytes.subarray(at) : undefined);
            return;
          }
          const colon = line.indexOf(":");
          if (colon <= 0 || !TOKEN.test(line.slice(0, colon)) || BAD_BYTES.test(line)) throw new ResponseParseError("a malformed trailer line");
          continue;
        }
        case State.Done:
          this.events.end(bytes.subarray(at));
          return;
      }
    }
  }
}
