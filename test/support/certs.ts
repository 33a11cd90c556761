/** Development certificates from `make certs` (scripts/make-certs.sh), made once per test run. */
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";

export const CERTS_DIR = resolve(import.meta.dir, "../../certs");

/** Makes the certificates when a suite runs without `make certs` first. */
export function ensureCerts(): string {
  if (!existsSync(`${CERTS_DIR}/ca.crt`)) {
    const r = Bun.spawnSync(["bash", resolve(import.meta.dir, "../../scripts/make-certs.sh"), CERTS_DIR]);
    if (r.exitCode !== 0) throw new Error(`make-certs failed: ${r.stderr.toString()}`);
  }
  return CERTS_DIR;
}

export function cert(name: string): string {
  return readFileSync(`${ensureCerts()}/${name}`, "utf8");
}
