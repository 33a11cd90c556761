/**
 * The gateway's signing keys in `[keys] jwks_file`: generated on first need and written 0600,
 * loaded as they are, never replaced when invalid, rotated with a grace period that survives a
 * restart, and published with public members only.
 */
import { afterEach, describe, expect, it } from "bun:test";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { calculateJwkThumbprint, createLocalJWKSet, jwtVerify, SignJWT, type JWK } from "jose";
import { jwksResponse } from "../../../src/keys/admin.ts";
import { FileKeyStore, type FileKeyStoreOptions } from "../../../src/keys/file-store.ts";

import { createLogger } from "../../../src/log.ts";
import { bunRuntime } from "../../../src/runtime/bun.ts";
import { KeyStoreError } from "../../../src/errors.ts";
import { tempFolders } from "../../support/temp.ts";
import { waitUntil } from "../../support/wait.ts";

const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k", "priv"];
const lines: Record<string, unknown>[] = [];
const log = createLogger("debug", (line) => void lines.push(JSON.parse(line)));
const stores: FileKeyStore[] = [];

afterEach(() => {
  for (const s of stores.splice(0)) s.close();
  lines.length = 0;
});

/** A fresh folder, removed after the file. */
const folder = tempFolders("keys-");

/** EC and EdDSA keys only, unless a test needs RSA: they generate in microseconds. */
function store(file: string, options: Partial<FileKeyStoreOptions> = {}): FileKeyStore {
  const s = new FileKeyStore({ runtime: bunRuntime, file, rotationGrace: 3600, log, algorithms: ["ES256", "EdDSA"], watch: false, ...options });
  stores.push(s);
  return s;
}

const keysIn = (file: string) => JSON.parse(readFileSync(file, "utf8")) as { keys: JWK[]; retired?: { until: number; jwk: JWK }[] };
const publicKeys = async (s: FileKeyStore) => (JSON.parse((await s.publicJwks()).body) as { keys: JWK[] }).keys;

describe("a missing key file", () => {
  it("is not created at open: keys are generated on first need", async () => {
    const file = join(folder(), "data", "gateway-jwks.json");
    const s = store(file);
    await s.open();
    expect(existsSync(file)).toBe(false);
    await s.publicJwks();
    expect(existsSync(file)).toBe(true);
  });

  it("is generated with RS256, PS256, ES256 and more by default, each kid the RFC 7638 thumbprint, alg and use sig", async () => {
    const file = join(folder(), "jwks.json");
    const s = store(file, { algorithms: undefined });
    await s.open();
    const published = await publicKeys(s);
    const algs = published.map((k) => k.alg);
    for (const alg of ["RS256", "PS256", "ES256"]) expect(algs).toContain(alg);
    for (const key of keysIn(file).keys) {
      expect(key.kid).toBe(await calculateJwkThumbprint(key, "sha256"));
      expect(key.use).toBe("sig");
      expect(typeof key.d).toBe("string");
    }
  });

  it("is written with mode 0600, in a folder made 0700, with no temporary file left behind", async () => {
    const dir = folder();
    const file = join(dir, "made", "jwks.json");
    const s = store(file);
    await s.signingKey({ alg: "ES256" });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, "made")).mode & 0o777).toBe(0o700);
    expect(readdirSync(join(dir, "made"))).toEqual(["jwks.json"]);
  });

  it("is generated once when several callers need keys at the same moment", async () => {
    const file = join(folder(), "jwks.json");
    const s = store(file);
    const [a, b, c] = await Promise.all([s.signingKey({ alg: "ES256" }), s.signingKey({ alg: "ES256" }), s.publicJwks()]);
    expect(a.kid).toBe(b.kid);
    expect(c.kids).toContain(a.kid);
    expect(lines.filter((l) => l.event === "keys.generated")).toHaveLength(1);
  });
});

describe("the published JWKS", () => {
  it("never shows a private member, for every key type", async () => {
    const s = store(join(folder(), "jwks.json"), { algorithms: ["RS256", "ES256", "EdDSA"] });
    const { body } = await s.publicJwks();
    const json = JSON.parse(body) as { keys: Record<string, unknown>[] };
    expect(json.keys).toHaveLength(3);
    for (const key of json.keys) for (const member of PRIVATE_MEMBERS) expect(key).not.toHaveProperty(member);
    for (const member of PRIVATE_MEMBERS) expect(body).not.toContain(`"${member}"`);
  });

  it("verifies what the signing key signs", async () => {
    const s = store(join(folder(), "jwks.json"));
    const key = await s.signingKey({ alg: "ES256" });
    const jwt = await new SignJWT({ sub: "kong" }).setProtectedHeader({ alg: key.alg, kid: key.kid }).sign(key.privateKey);
    const jwks = createLocalJWKSet(JSON.parse((await s.publicJwks()).body));
    expect((await jwtVerify(jwt, jwks)).payload.sub).toBe("kong");
  });

  it("answers 304 to a poll that has the current ETag, and says no-cache", async () => {
    const s = store(join(folder(), "jwks.json"));
    const jwks = await s.publicJwks();
    const first = jwksResponse(new Request("http://gw/openid-connect/jwks"), jwks);
    expect(first.status).toBe(200);
    expect(first.headers.get("cache-control")).toBe("no-cache");
    expect(first.headers.get("content-type")).toBe("application/json");
    const etag = first.headers.get("etag")!;
    expect(etag).toMatch(/^"[\w-]+"$/);
    const again = jwksResponse(new Request("http://gw/openid-connect/jwks", { headers: { "if-none-match": `W/"other", ${etag}` } }), jwks);
    expect(again.status).toBe(304);
    expect(await again.text()).toBe("");
  });

  it("answers HEAD with the GET's headers, content-length included", async () => {
    const s = store(join(folder(), "jwks.json"));
    const jwks = await s.publicJwks();
    const get = jwksResponse(new Request("http://gw/openid-connect/jwks"), jwks);
    const head = jwksResponse(new Request("http://gw/openid-connect/jwks", { method: "HEAD" }), jwks);
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe(String(new TextEncoder().encode(await get.text()).length));
    for (const name of ["etag", "cache-control", "content-type"]) expect(head.headers.get(name)).toBe(get.headers.get(name));
  });
});

describe("an existing key file", () => {
  it("is loaded as it is: the same kids after a restart", async () => {
    const file = join(folder(), "jwks.json");
    const first = store(file);
    const kids = (await first.publicJwks()).kids;
    const second = store(file);
    await second.open();
    expect((await second.publicJwks()).kids).toEqual(kids);
    expect(lines.filter((l) => l.event === "keys.generated")).toHaveLength(1);
  });

  it("may leave out kid: the thumbprint is used", async () => {
    const file = join(folder(), "jwks.json");
    const seedFile = join(folder(), "seed.json");
    await store(seedFile).publicJwks();
    const { keys } = keysIn(seedFile);
    const withoutKid = keys.map(({ kid: _kid, ...rest }) => rest);
    writeFileSync(file, JSON.stringify({ keys: withoutKid }), { mode: 0o600 });
    const s = store(file);
    await s.open();
    expect((await s.publicJwks()).kids).toEqual(keys.map((k) => k.kid!));
  });

  it.each([
    ["not JSON", "{ nope", /is not JSON/],
    ["an empty key list", '{"keys":[]}', /non-empty "keys" array/],
    ["a public key", JSON.stringify({ keys: [{ kty: "EC", crv: "P-256", x: "a", y: "b", alg: "ES256" }] }), /keys\[0\]: expected a private key/],
    ["a key without alg", JSON.stringify({ keys: [{ kty: "EC", crv: "P-256", x: "a", y: "b", d: "c" }] }), /keys\[0\]: expected "alg"/],
    [
      "a key of the wrong type for its alg",
      JSON.stringify({ keys: [{ kty: "EC", crv: "P-256", x: "a", y: "b", d: "c", alg: "RS256" }] }),
      /expected "kty" "RSA"/,
    ],
    ["an HMAC key", JSON.stringify({ keys: [{ kty: "oct", k: "c2VjcmV0", alg: "HS256" }] }), /keys\[0\]: expected "alg"/],
    [
      "a key that does not import",
      JSON.stringify({ keys: [{ kty: "EC", crv: "P-256", x: "a", y: "b", d: "c", alg: "ES256" }] }),
      /not a usable ES256 private key/,
    ],
  ])("is a start error naming keys.jwks_file when it holds %s, and is never replaced", async (_what, text, message) => {
    const file = join(folder(), "jwks.json");
    writeFileSync(file, text, { mode: 0o600 });
    const s = store(file);
    const error = await s.open().catch((e) => e);
    expect(error).toBeInstanceOf(KeyStoreError);
    expect(error.setting).toBe("keys.jwks_file");
    expect(error.message).toMatch(message);
    expect(error.message).toContain(file);
    expect(error.message).toContain("never replaces it");
    expect(readFileSync(file, "utf8")).toBe(text);
  });

  it("with two keys of one kid is refused", async () => {
    const seedFile = join(folder(), "seed.json");
    await store(seedFile).publicJwks();
    const { keys } = keysIn(seedFile);
    const file = join(folder(), "jwks.json");
    writeFileSync(file, JSON.stringify({ keys: [keys[0], { ...keys[1], kid: keys[0]!.kid }] }));
    expect(
      (
        await store(file)
          .open()
          .catch((e) => e)
      ).message,
    ).toMatch(/is used twice/);
  });

  it("readable by others is used, with a warning", async () => {
    const file = join(folder(), "jwks.json");
    await store(file).publicJwks();
    const { chmodSync } = await import("node:fs");
    chmodSync(file, 0o644);
    await store(file).open();
    expect(lines.some((l) => l.event === "keys.file_mode" && l.mode === "644")).toBe(true);
  });
});

describe("signing keys", () => {
  it("are picked by alg, and an alg without a key gets one added to the file, the others kept", async () => {
    const file = join(folder(), "jwks.json");
    const s = store(file);
    const before = (await s.publicJwks()).kids;
    const es384 = await s.signingKey({ alg: "ES384" });
    expect(before).not.toContain(es384.kid);
    expect(keysIn(file).keys.map((k) => k.kid)).toEqual([...before, es384.kid]);
    expect((await s.signingKey({ alg: "ES384" })).kid).toBe(es384.kid);
  });

  it("are pinned by kid (client_jwk), which must exist and have the requested alg", async () => {
    const s = store(join(folder(), "jwks.json"));
    const es = await s.signingKey({ alg: "ES256" });
    expect((await s.signingKey({ alg: "ES256", kid: es.kid })).kid).toBe(es.kid);
    const unknown = await s.signingKey({ alg: "ES256", kid: "nope" }).catch((e) => e);
    expect(unknown).toBeInstanceOf(KeyStoreError);
    expect(unknown.setting).toBe("client_jwk");
    const wrongAlg = await s.signingKey({ alg: "EdDSA", kid: es.kid }).catch((e) => e);
    expect(wrongAlg.setting).toBe("client_alg");
  });
});

describe("rotation", () => {
  it("makes new keys the signing keys at once and keeps the previous public keys published", async () => {
    const file = join(folder(), "jwks.json");
    const s = store(file);
    const old = await s.signingKey({ alg: "ES256" });
    const oldKids = (await s.publicJwks()).kids;
    const rotation = await s.rotate();
    expect(rotation.retired).toEqual([...oldKids]);
    const current = await s.signingKey({ alg: "ES256" });
    expect(current.kid).not.toBe(old.kid);
    expect(rotation.kids).toContain(current.kid);
    const published = (await s.publicJwks()).kids;
    expect(published).toEqual([...rotation.kids, ...oldKids]);
    const keys = await publicKeys(s);
    for (const key of keys) for (const member of PRIVATE_MEMBERS) expect(key).not.toHaveProperty(member);
    // Only public parts of retired keys are kept on disk.
    for (const r of keysIn(file).retired!) expect(r.jwk).not.toHaveProperty("d");
  });

  it("survives a restart, and the retired keys leave the JWKS when rotation_grace is over", async () => {
    const file = join(folder(), "jwks.json");
    let now = 1_700_000_000_000;
    const s = store(file, { rotationGrace: 60, now: () => now });
    const oldKids = (await s.publicJwks()).kids;
    const rotation = await s.rotate();
    now += 30_000;
    const restarted = store(file, { rotationGrace: 60, now: () => now });
    await restarted.open();
    expect((await restarted.publicJwks()).kids).toEqual([...rotation.kids, ...oldKids]);
    const etag = (await restarted.publicJwks()).etag;
    now += 31_000;
    const after = await restarted.publicJwks();
    expect(after.kids).toEqual([...rotation.kids]);
    expect(after.etag).not.toBe(etag);
  });

  it("rotates the algorithms in use, including one added later", async () => {
    const s = store(join(folder(), "jwks.json"));
    await s.signingKey({ alg: "ES512" });
    const rotation = await s.rotate();
    const algs = (await publicKeys(s)).filter((k) => rotation.kids.includes(k.kid!)).map((k) => k.alg);
    expect(algs.sort()).toEqual(["ES256", "ES512", "EdDSA"]);
  });

  it("done by another process sharing the file is picked up by watching it", async () => {
    const file = join(folder(), "jwks.json");
    const a = store(file, { watch: true });
    const b = store(file, { watch: true });
    await a.publicJwks();
    await b.open();
    const rotation = await a.rotate();
    const deadline = Date.now() + 3000;
    while (!(await b.publicJwks()).kids.includes(rotation.kids[0]!) && Date.now() < deadline) await Bun.sleep(20);
    expect((await b.signingKey({ alg: "ES256" })).kid).toBe((await a.signingKey({ alg: "ES256" })).kid);
  });

  it("broken by hand in a shared file is ignored with an error, the keys in memory kept", async () => {
    const file = join(folder(), "jwks.json");
    const s = store(file, { watch: true });
    const kids = (await s.publicJwks()).kids;
    writeFileSync(file, "{ broken");
    const deadline = Date.now() + 3000;
    while (!lines.some((l) => l.event === "keys.reload_failed") && Date.now() < deadline) await Bun.sleep(20);
    expect(lines.some((l) => l.event === "keys.reload_failed")).toBe(true);
    expect((await s.publicJwks()).kids).toEqual(kids);
  });
});

describe("a rotation the IdP has not seen yet (rotation_signing_delay)", () => {
  const delayed = (file: string, now: () => number) =>
    new FileKeyStore({
      runtime: bunRuntime,
      file,
      rotationGrace: 3600,
      rotationSigningDelay: 60,
      log: createLogger("error", () => {}),
      watch: false,
      algorithms: ["ES256"],
      now,
    });

  it("publishes the new keys at once, signs with the previous key until the delay passes", async () => {
    let t = Date.now();
    const s = delayed(join(folder(), "jwks.json"), () => t);
    const before = (await s.signingKey({ alg: "ES256" })).kid;
    const rotation = await s.rotate();
    expect(JSON.parse((await s.publicJwks()).body).keys.map((k: { kid: string }) => k.kid)).toEqual([...rotation.kids, before]);
    expect((await s.signingKey({ alg: "ES256" })).kid).toBe(before);
    t += 61_000;
    expect((await s.signingKey({ alg: "ES256" })).kid).toBe(rotation.kids[0]!);
    expect((await s.previousSigningKey({ alg: "ES256" }))?.kid).toBe(before);
    s.close();
  });

  it("switches to the new key as soon as the JWKS is served, and keeps that across a restart", async () => {
    const file = join(folder(), "jwks.json");
    const s = delayed(file, Date.now);
    await s.signingKey({ alg: "ES256" });
    const rotation = await s.rotate();
    s.jwksServed(await s.publicJwks());
    await waitUntil("the new key signs", async () => (await s.signingKey({ alg: "ES256" })).kid === rotation.kids[0]!, 5000, 10);
    s.close();
    const again = delayed(file, Date.now);
    await again.open();
    expect((await again.signingKey({ alg: "ES256" })).kid).toBe(rotation.kids[0]!);
    again.close();
  });

  it("is not ended by a JWKS served before it, even when that fetch is handled once the rotation is done", async () => {
    const s = delayed(join(folder(), "jwks.json"), Date.now);
    await s.signingKey({ alg: "ES256" });
    const first = await s.rotate();
    const served = await s.publicJwks(); // the first rotation's keys, its delay still running
    const second = s.rotate();
    s.jwksServed(served); // handled after the second rotation
    const rotation = await second;
    await Bun.sleep(50);
    expect((await s.signingKey({ alg: "ES256" })).kid).toBe(first.kids[0]!);
    s.jwksServed(await s.publicJwks());
    await waitUntil("the second rotation's key signs", async () => (await s.signingKey({ alg: "ES256" })).kid === rotation.kids[0]!, 5000, 10);
    s.close();
  });

  it("with immediate, signs with the new key at once and keeps no previous key to retry with", async () => {
    const s = delayed(join(folder(), "jwks.json"), Date.now);
    await s.signingKey({ alg: "ES256" });
    const rotation = await s.rotate({ immediate: true });
    expect((await s.signingKey({ alg: "ES256" })).kid).toBe(rotation.kids[0]!);
    expect(await s.previousSigningKey({ alg: "ES256" })).toBeUndefined();
    s.close();
  });
});
