/** wrk and nginx (and the peers: HAProxy, Apache + mod_auth_openidc) from Debian's packages, installed with apt-get when missing. */
import { existsSync } from "node:fs";
import { run } from "./proc.ts";

export interface Tools {
  readonly wrk: string;
  readonly nginx: string;
  readonly taskset: string | undefined;
  /** Set by ensurePeers when a scenario needs them. */
  haproxy?: string;
  apache?: string;
}

async function which(name: string, extra: readonly string[] = []): Promise<string | undefined> {
  const found = await run(["sh", "-c", `command -v ${name}`]);
  if (found.code === 0 && found.stdout.trim()) return found.stdout.trim();
  return extra.find((p) => existsSync(p));
}

async function aptInstall(packages: readonly string[]): Promise<void> {
  const sudo = process.getuid?.() === 0 ? [] : ["sudo", "-n"];
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  // Other developers' and suites' installs may hold the dpkg lock: wait for it (up to 10 min).
  const lock = ["-o", "DPkg::Lock::Timeout=600"];
  const install = [...sudo, "apt-get", ...lock, "install", "-y", "-q", "--no-install-recommends", ...packages];
  console.log(`bench: installing ${packages.join(" ")} with apt-get`);
  let result = await run(install, 300_000, env);
  if (result.code !== 0) {
    // A fresh machine may have no package lists yet; update once, then retry.
    console.log("bench: apt-get install failed, running apt-get update first");
    const update = await run([...sudo, "apt-get", ...lock, "update", "-q"], 300_000, env);
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

const APACHE_MODULE = "/usr/lib/apache2/modules/mod_auth_openidc.so";

/**
 * HAProxy and/or Apache with mod_auth_openidc, installed when missing. Resolves with why each peer
 * that cannot run cannot (its scenarios are then listed as skipped); empty when all can.
 */
export async function ensurePeers(tools: Tools, wanted: ReadonlySet<"haproxy" | "apache">): Promise<Map<string, string>> {
  const packages: string[] = [];
  tools.haproxy = await which("haproxy", ["/usr/sbin/haproxy"]);
  tools.apache = await which("apache2", ["/usr/sbin/apache2"]);
  if (wanted.has("haproxy") && !tools.haproxy) packages.push("haproxy");
  if (wanted.has("apache") && (!tools.apache || !existsSync(APACHE_MODULE))) packages.push("apache2", "libapache2-mod-auth-openidc");
  const problems = new Map<string, string>();
  if (packages.length) {
    try {
      await aptInstall(packages);
    } catch (error) {
      for (const p of wanted) problems.set(p, `not installed: ${(error as Error).message.split("\n")[0]}`);
    }
    tools.haproxy = await which("haproxy", ["/usr/sbin/haproxy"]);
    tools.apache = await which("apache2", ["/usr/sbin/apache2"]);
  }
  if (wanted.has("haproxy") && !tools.haproxy && !problems.has("haproxy")) problems.set("haproxy", "haproxy not found (apt-get install haproxy)");
  if (wanted.has("apache") && (!tools.apache || !existsSync(APACHE_MODULE)) && !problems.has("apache"))
    problems.set("apache", "apache2 or mod_auth_openidc not found (apt-get install apache2 libapache2-mod-auth-openidc)");
  return problems;
}

export async function peerVersions(tools: Tools): Promise<{ haproxy?: string; apache?: string; mod_auth_openidc?: string }> {
  const out: { haproxy?: string; apache?: string; mod_auth_openidc?: string } = {};
  if (tools.haproxy) out.haproxy = ((await run([tools.haproxy, "-v"])).stdout.split("\n")[0] ?? "").replace(/ - https.*/, "").trim();
  if (tools.apache) out.apache = ((await run([tools.apache, "-v"])).stdout.split("\n")[0] ?? "").replace(/^Server version: /, "").trim();
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own ${Version} format, not a template.
  const pkg = await run(["dpkg-query", "-W", "-f", "${Version}", "libapache2-mod-auth-openidc"]);
  if (pkg.code === 0 && pkg.stdout) out.mod_auth_openidc = pkg.stdout.trim();
  return out;
}

export async function nginxVersion(nginx: string): Promise<string> {
  const r = await run([nginx, "-v"]);
  return (r.stderr || r.stdout).trim().replace(/^nginx version: /, "");
}

export async function wrkVersion(wrk: string): Promise<string> {
  const r = await run([wrk, "-v"]);
  return ((r.stdout || r.stderr).split("\n")[0] ?? "").trim();
}
