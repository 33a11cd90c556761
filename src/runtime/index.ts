/**
 * Picks the runtime edge. This is the only place that asks which runtime is running;
 * the core receives a `Runtime` and never checks.
 */
import type { Runtime } from "./types.ts";

export type { Runtime } from "./types.ts";

export async function detectRuntime(): Promise<Runtime> {
  if ("Deno" in globalThis) return (await import("./deno.ts")).denoRuntime;
  return (await import("./bun.ts")).bunRuntime;
}
