/**
 * The per-request context handed to plugins: Hono's `Context`, with the gateway's variables in
 * a plain object. Hono keeps variables in a Map and builds a fresh object on every `c.var`
 * read (`Object.fromEntries`); plugins and the proxy read them several times per request.
 */
import { Context } from "hono";
import type { ConnInfo } from "../runtime/types.ts";
import type { GatewayEnv, GatewayVariables } from "./context.ts";

type Vars = Partial<GatewayVariables> & Record<string, unknown>;

// Shared functions instead of Hono's per-instance arrow functions: called as `c.set(...)`.
function setVar(this: GatewayContext, key: string, value: unknown): void {
  this.vars[key] = value;
}
function getVar(this: GatewayContext, key: string): unknown {
  return this.vars[key];
}

export class GatewayContext extends Context<GatewayEnv> {
  readonly vars: Vars;

  constructor(request: Request, conn: ConnInfo, path: string, vars: Vars) {
    super(request, { env: conn, path });
    this.vars = vars;
    this.set = setVar as Context<GatewayEnv>["set"];
    this.get = getVar as Context<GatewayEnv>["get"];
  }

  override get var(): Readonly<GatewayVariables> {
    return this.vars as GatewayVariables;
  }
}
