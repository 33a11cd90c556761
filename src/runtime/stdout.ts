/** The process's standard output, as a line sink for the logger (Bun and Deno both provide `process`). */
export const writeStdoutLine = (line: string): void => void process.stdout.write(line + "\n");
