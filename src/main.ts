/** CLI entry: arguments, config, listeners, signals. */
import { parseArgs, USAGE, UsageError } from "./cli/args.ts";
import { superviseWorkers, watchSupervisor, workerRole } from "./cli/workers.ts";
import { loadConfig } from "./config/load.ts";
import { ConfigError } from "./errors.ts";
import { watchConfig } from "./config/watch.ts";
import { configWarnings } from "./config/warnings.ts";
import { checkCertificateFiles, startGateway } from "./gateway/start.ts";
import { createLogger, flushLog } from "./log.ts";
import { detectRuntime } from "./runtime/index.ts";
import { VERSION } from "./version.ts";
import { pluginRegistry } from "./plugins/registry.ts";

const runtime = await detectRuntime();

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs(runtime.args());
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`oidc-gateway: ${error.message}\n\n${USAGE}`);
    return 2;
  }
  switch (args.command) {
    case "help":
      console.log(USAGE);
      return 0;
    case "version":
      console.log(`oidc-gateway ${VERSION} (${runtime.name} ${runtime.version})`);
      return 0;
    case "schema": {
      const { jsonSchema } = await import("./config/json-schema.ts");
      console.log(JSON.stringify(jsonSchema(pluginRegistry), null, 2));
      return 0;
    }
    case "check":
      try {
        const { config } = await loadConfig(runtime, args.config, pluginRegistry);
        await checkCertificateFiles(runtime, config);
        for (const warning of configWarnings(config, pluginRegistry)) console.error(`${args.config}: warning: ${warning}`);
        console.log(`${args.config}: configuration is valid`);
        return 0;
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        console.error(error.message);
        return 1;
      }
    case "serve": {
      let loaded;
      try {
        loaded = await loadConfig(runtime, args.config, pluginRegistry);
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        console.error(error.message);
        return 1;
      }
      const worker = workerRole(runtime);
      const log = createLogger(loaded.config.server.log_level, undefined, worker ? { worker: worker.index } : {});
      if (loaded.config.server.workers > 1 && !worker) return superviseWorkers(runtime, loaded, log);
      let gateway;
      try {
        gateway = await startGateway(runtime, loaded, log, worker ? { reusePort: true, admin: worker.index === 0 } : {});
      } catch (error) {
        if (error instanceof ConfigError) {
          console.error(error.message);
          return 1;
        }
        log.error("gateway.start_failed", { error });
        return 3;
      }
      const shutdown = () =>
        void gateway.stop().then(() => {
          flushLog();
          runtime.exit(0);
        });
      runtime.onSignal("SIGTERM", shutdown);
      runtime.onSignal("SIGINT", shutdown);
      if (worker) watchSupervisor(runtime, shutdown);
      runtime.onSignal("SIGHUP", () => void gateway.reload());
      if (loaded.config.server.watch) watchConfig(runtime, args.config, () => void gateway.reload());
      return -1; // keep running
    }
  }
}

const code = await main();
if (code >= 0) {
  flushLog();
  runtime.exit(code);
}
