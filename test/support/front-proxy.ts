/**
 * Real front proxies for the decision-mode suite: nginx with `auth_request` and Caddy with
 * `forward_auth`, each on a free loopback port, asking the gateway's decision listener before
 * proxying to an upstream. Install with `bash scripts/ensure-front-proxies.sh`.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./gateway-process.ts";
import { listening } from "./wait.ts";

export interface FrontProxy {
  readonly url: string;
  readonly output: string[];
  stop(): Promise<void>;
}

/** Runs the proxy with its config in `dir`, which is removed once the proxy has stopped. */
async function run(cmd: string, args: string[], port: number, dir: string, env: Record<string, string> = {}): Promise<FrontProxy> {
  const output: string[] = [];
  const child: ChildProcess = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  child.stdout?.on("data", (d) => output.push(String(d)));
  child.stderr?.on("data", (d) => output.push(String(d)));
  if (!(await listening(port, 10_000, 50))) {
    child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`${cmd} did not start: ${output.join("")}`);
  }
  return {
    url: `http://127.0.0.1:${port}`,
    output,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
        if (child.exitCode === null) child.kill("SIGKILL");
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** nginx: `auth_request` to the decision listener, the gateway's Authorization and consumer headers copied upstream. */
export async function startNginxAuthRequest(decisionPort: number, upstreamPort: number): Promise<FrontProxy> {
  const dir = mkdtempSync(join(tmpdir(), "nginx-auth-"));
  const port = await freePort();
  writeFileSync(
    join(dir, "nginx.conf"),
    `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  server {
    listen 127.0.0.1:${port};
    location / {
      auth_request /_gateway_decision;
      auth_request_set $gw_authorization $upstream_http_authorization;
      auth_request_set $gw_consumer $upstream_http_x_consumer_username;
      auth_request_set $gw_challenge $upstream_http_www_authenticate;
      add_header WWW-Authenticate $gw_challenge always;
      proxy_set_header Authorization $gw_authorization;
      proxy_set_header X-Consumer-Username $gw_consumer;
      proxy_pass http://127.0.0.1:${upstreamPort};
    }
    location = /_gateway_decision {
      internal;
      proxy_pass http://127.0.0.1:${decisionPort};
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header Host $host;
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Original-Method $request_method;
      proxy_set_header X-Real-IP $remote_addr;
    }
  }
}
`,
  );
  return run("/usr/sbin/nginx", ["-p", dir, "-c", join(dir, "nginx.conf")], port, dir);
}

/** Caddy: `forward_auth` to the decision listener (Traefik's forwardAuth convention), headers copied upstream. */
export async function startCaddyForwardAuth(decisionPort: number, upstreamPort: number): Promise<FrontProxy> {
  const dir = mkdtempSync(join(tmpdir(), "caddy-auth-"));
  const port = await freePort();
  writeFileSync(
    join(dir, "Caddyfile"),
    `{
  admin off
  auto_https off
  storage file_system ${dir}/data
}
http://127.0.0.1:${port} {
  forward_auth 127.0.0.1:${decisionPort} {
    uri /
    copy_headers Authorization X-Consumer-Username
  }
  reverse_proxy 127.0.0.1:${upstreamPort}
}
`,
  );
  return run("caddy", ["run", "--config", join(dir, "Caddyfile"), "--adapter", "caddyfile"], port, dir, {
    HOME: dir,
    XDG_DATA_HOME: dir,
    XDG_CONFIG_HOME: dir,
  });
}
