/** wrk and nginx from Debian's packages, installed with apt-get when missing. */
import { existsSync } from "node:fs";
import { run } from "./proc.ts";

export interface Tools {
  readonly wrk: string;
  readonly nginx: string;
  readonly taskset: string | undefined;
}

async function which(name: string, extra: readonly string[] = []): Promise<string | undefined> {
  const found = await run(["sh", "-c", `command -v ${name}`]);
  if (found.code === 0 && found.stdout.trim()) return found.stdout.trim();
  return extra.find((p) => existsSync(p));
}

async function aptInstall(packages: readonly string[]): Promise<void> {
  const sudo = process.getuid?.() === 0 ? [] : ["sudo", "-n"];
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  const install = [...sudo, "apt-get", "install", "-y", "-q", "--no-install-recommends", ...packages];
  console.log(`bench: installing ${packages.join(" ")} with apt-get`);
  let result = await run(install, 300_000, env);
  if (result.code !== 0) {
    // A fresh machine may have no package lists yet; update once, then retry.
    console.log("bench: apt-get install failed, running apt-get update first");
    const update = await run([...sudo, "apt-get", "update", "-q"], 300_000, env);
    if (update.code !== 0) throw new Error(`apt-get update failed:\n${update.stderr}`);
    result = await run(install, 300_000, env);
  }
  if (result.code !== 0) throw new Error(`apt-get install ${packages.join(" ")} failed:\n${result.stderr}`);
}

export async function ensureTools(): Promise<Tools> {
  let wrk = await which("wrk");
  let nginx = await which("nginx", ["/usr/sbin/nginx"]);
  const missing = [...(wrk ? [] : ["wrk"]), ...(nginx ? [] : ["nginx"])];
  if (missing.length) {
    await aptInstall(missing);
    wrk = await which("wrk");
    nginx = await which("nginx", ["/usr/sbin/nginx"]);
  }
  if (!wrk || !nginx) throw new Error("wrk and nginx are needed; install them with: apt-get install wrk nginx");
  return { wrk, nginx, taskset: await which("taskset") };
}

export async function nginxVersion(nginx: string): Promise<string> {
  const r = await run([nginx, "-v"]);
  return (r.stderr || r.stdout).trim().replace(/^nginx version: /, "");
}

export async function wrkVersion(wrk: string): Promise<string> {
  const r = await run([wrk, "-v"]);
  return ((r.stdout || r.stderr).split("\n")[0] ?? "").trim();
}
