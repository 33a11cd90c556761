/**
 * nginx in two roles: the upstream every scenario shares (`200 ok` from memory) and the reference
 * reverse proxy (scenario 2). Configs live in the run's temp folder; nothing touches /etc/nginx.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawnLogged, type Started } from "./proc.ts";

function common(dir: string, name: string, workers: number): string {
  const temp = join(dir, `${name}-temp`);
  mkdirSync(temp, { recursive: true });
  return `worker_processes ${workers};
daemon off;
master_process on;
pid ${join(dir, `${name}.pid`)};
error_log ${join(dir, `${name}.error.log`)} warn;
events { worker_connections 4096; }
`;
}

function temps(dir: string, name: string): string {
  const temp = join(dir, `${name}-temp`);
  return ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((t) => `  ${t}_temp_path ${temp}/${t};`).join("\n");
}

/** The shared upstream: answers `200 ok` (text/plain, 2 bytes) from memory. */
export function upstreamConfig(dir: string, name: string, port: number, workers = 1): string {
  return `${common(dir, name, workers)}
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  default_type text/plain;
${temps(dir, name)}
  server {
    listen 127.0.0.1:${port}${workers > 1 ? " reuseport" : ""};
    location / { return 200 "ok"; }
  }
}
`;
}

/**
 * The reference: nginx as a plain reverse proxy with upstream keepalive, setting the usual
 * forwarding headers, as a Kong-like gateway would. No access log, like the gateway's runs.
 */
export function proxyConfig(dir: string, name: string, port: number, upstreamPort: number, workers = 1): string {
  return `${common(dir, name, workers)}
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
${temps(dir, name)}
  upstream backend {
    server 127.0.0.1:${upstreamPort};
    keepalive 128;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
  }
  server {
    listen 127.0.0.1:${port}${workers > 1 ? " reuseport" : ""};
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $proxy_host;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $host;
      proxy_set_header X-Forwarded-Port $server_port;
    }
  }
}
`;
}

export function startNginx(nginx: string, dir: string, name: string, config: string, cpus?: string): Started {
  const file = join(dir, `${name}.conf`);
  writeFileSync(file, config);
  return spawnLogged(name, [nginx, "-e", join(dir, `${name}.error.log`), "-p", dir, "-c", file], { dir, ...(cpus !== undefined ? { cpus } : {}) });
}
