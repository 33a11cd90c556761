/** Serialises a request head for HTTP/1.1 and decides the request body's framing. */
import { BadRequestError } from "../errors.ts";

export interface UpstreamRequest {
  readonly method: string;
  /** Origin-form target: path and query. */
  readonly target: string;
  /** The Host header the upstream receives. */
  readonly host: string;
  /** End-to-end headers, already cleaned (no Host, no hop-by-hop), or already written as head lines. */
  readonly headers: Headers | HeadLines;
  /** A stream is sent as it arrives; bytes (or no body) can be sent again on a fresh connection. */
  readonly body: ReadableStream<Uint8Array> | Uint8Array | null;
}

/** Header lines written by the caller ("name: value\r\n" each, no Host), and the caller's Content-Length apart. */
export interface HeadLines {
  readonly lines: string;
  readonly contentLength: string | null;
}

/** How the request body is framed on the wire. */
export interface RequestFraming {
  /** Bytes the stream must deliver (Content-Length), or -1: chunked. */
  readonly length: number;
}

const TARGET = /^[\x21-\x7e]+$/;
const NON_ASCII = /[^\x00-\x7f]/;
/** Methods whose bodyless requests still say `Content-Length: 0` (as browsers and fetch do). */
const PAYLOAD_METHODS = new Set(["POST", "PUT", "PATCH"]);

/** The head as text; header values are ByteStrings, so every char is one byte (see `headBytes`). */
export function requestHead(req: UpstreamRequest): { head: string; framing: RequestFraming } {
  if (!TARGET.test(req.target)) throw new BadRequestError("the request target has characters that cannot be sent upstream");
  let head = `${req.method} ${req.target} HTTP/1.1\r\nhost: ${req.host}\r\n`;
  let declared: string | null = null;
  const headers = req.headers;
  if (headers instanceof Headers)
    headers.forEach((value, name) => {
      if (name === "content-length") declared = value;
      else head += `${name}: ${value}\r\n`;
    });
  else {
    head += headers.lines;
    declared = headers.contentLength;
  }
  const body = req.body;
  let length: number;
  if (body === null) {
    length = 0;
    if (PAYLOAD_METHODS.has(req.method) || declared !== null) head += "content-length: 0\r\n";
  } else if (body instanceof Uint8Array) {
    length = body.byteLength;
    head += `content-length: ${length}\r\n`;
  } else if (declared !== null && /^\d{1,15}$/.test(declared)) {
    length = Number(declared);
    head += `content-length: ${length}\r\n`;
  } else {
    length = -1;
    head += "transfer-encoding: chunked\r\n";
  }
  return { head: `${head}\r\n`, framing: { length } };
}

/** The head as bytes when it has a char a UTF-8 writer would turn into two bytes; else the string. */
export function headBytes(head: string): string | Uint8Array {
  if (!NON_ASCII.test(head)) return head;
  const out = new Uint8Array(head.length);
  for (let i = 0; i < head.length; i++) out[i] = head.charCodeAt(i);
  return out;
}
