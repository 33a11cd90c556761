import { describe, expect, it } from "bun:test";
import { configurationMarkdown } from "../../../src/config/docs.ts";
import { pluginRegistry } from "../../../src/plugins/registry.ts";
import { errorOf } from "../../support/config.ts";

const SEE = "is a Kong setting this gateway does not implement (see docs/configuration.md#kong-settings-not-implemented)";

const service = `[[services]]\nname = "s"\nurl = "http://127.0.0.1:9000"\n`;
const route = `[[routes]]\nname = "r"\nservice = "s"\npaths = ["/"]\n`;

describe("Kong keys this gateway does not implement", () => {
  it("are named as Kong settings in [server], services, routes and plugin configs, one line per key", () => {
    const message = errorOf(
      `[server]\nnginx_worker_processes = 2\n${service}tags = ["a"]\n${route}expression = "x"\n` +
        `[[plugins]]\nname = "openid-connect"\n[plugins.config]\nissuer = "http://localhost:8080/realms/master"\nsession_secret = "x"\nverify_signature = false\n`,
    );
    expect(message).toContain(`server.nginx_worker_processes: 'nginx_worker_processes' ${SEE}`);
    expect(message).toContain(`services[0].tags: 'tags' ${SEE}`);
    expect(message).toContain(`routes[0].expression: 'expression' ${SEE}`);
    expect(message).toContain(`plugins[0].config.session_secret: 'session_secret' ${SEE}`);
    expect(message).toContain(`plugins[0].config.verify_signature: 'verify_signature' ${SEE}`);
  });

  it("leave typos to the did-you-mean, and keys of neither kind unknown", () => {
    const message = errorOf(`[server]\nproxy_lisen = "0.0.0.0:8000"\nfrobnicate = 1\n${service}${route}`);
    expect(message).toContain(`server.proxy_lisen: unknown key (did you mean "proxy_listen"?)`);
    expect(message).toContain("server.frobnicate: unknown key");
    expect(message).not.toContain(`'proxy_lisen' ${SEE}`);
  });

  it("are listed in docs/configuration.md with a reason, except those a table has", () => {
    const doc = configurationMarkdown(pluginRegistry);
    const section = doc.slice(doc.indexOf("## Kong settings not implemented"));
    expect(section).toContain("`verify_signature`");
    expect(section).toMatch(/`session_secret`[^|]*\| browser sign-in and sessions/);
    expect(section).not.toMatch(/\| `\[\[routes\]\]` \|[^|]*`paths`/);
    expect(section).not.toMatch(/plugin `openid-connect` \|[^|]*`client_credentials_param_type`/);
  });
});
