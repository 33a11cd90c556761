/**
 * The literal text every match of a path regex must start with, so the router can file a regex
 * under that prefix in its trie and never run it for a path that does not start so.
 * Conservative: anything it does not understand ends the prefix; a top-level `|` empties it.
 */
const META = new Set([..."()[]{}.*+?^$|\\"]);

// The leading run of plain characters, found natively (this runs once per regex route at start).
const PLAIN_RUN = /^[^()[\]{}.*+?^$|\\]*/;

export function regexLiteralPrefix(source: string): string {
  if (source.includes("|") && hasTopLevelAlternation(source)) return "";
  const run = PLAIN_RUN.exec(source)![0];
  // Each plain character is part of the prefix unless a quantifier follows it: within the run
  // none does, after it one may.
  if (isQuantifier(source[run.length])) return run.slice(0, -1);
  let out = run;
  for (let i = run.length; i < source.length; i++) {
    const ch = source[i]!;
    if (ch === "\\") {
      const next = source[i + 1];
      // An escaped punctuation character is itself; `\d`, `\b`, `\u…` and the like are not literals.
      if (next === undefined || /[A-Za-z0-9]/.test(next)) break;
      if (isQuantifier(source[i + 2])) break;
      out += next;
      i++;
      continue;
    }
    if (META.has(ch)) break;
    // `a*`, `a?`, `a{0,1}`: an optional literal is not part of the prefix.
    if (isQuantifier(source[i + 1])) break;
    out += ch;
  }
  return out;
}

const isQuantifier = (ch: string | undefined) => ch === "*" || ch === "?" || ch === "{";

function hasTopLevelAlternation(source: string): boolean {
  let depth = 0;
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const ch = source[i];
    if (ch === "\\") {
      i++;
      continue;
    }
    if (inClass) {
      if (ch === "]") inClass = false;
      continue;
    }
    if (ch === "[") inClass = true;
    else if (ch === "(") depth++;
    else if (ch === ")") depth--;
    else if (ch === "|" && depth === 0) return true;
  }
  return false;
}
