/** The `pali` command: argument parsing and dispatch. Each command lives in commands/. */
import { parseArgs } from "node:util";
import { InvalidArgumentError } from "@pali/core";
import { info, infoHelp } from "./commands/info.js";
import { type Io, processIo, reportError } from "./output.js";

const usage = `Usage: pali <command> [options]

Commands:
  info      versions, backends, devices, CPU features; a GGUF file's metadata with -m

Run \`pali <command> --help\` for a command's options. Add --json for machine-readable output.
`;

export async function main(argv: string[], io: Io = processIo): Promise<number> {
  const [command, ...rest] = argv;
  const json = rest.includes("--json");
  try {
    if (command === undefined || command === "--help" || command === "-h" || command === "help") {
      io.stdout(usage);
      return 0;
    }
    if (command === "--version" || command === "-v") {
      const { systemInfo } = await import("@pali/core");
      io.stdout(`${systemInfo().pali}\n`);
      return 0;
    }
    switch (command) {
      case "info": {
        const { values } = parse(rest, {
          model: { type: "string", short: "m" },
          json: { type: "boolean" },
          help: { type: "boolean", short: "h" },
        });
        if (values.help) {
          io.stdout(infoHelp);
          return 0;
        }
        return await info({ model: values.model as string | undefined, json }, io);
      }
      default:
        throw new InvalidArgumentError(
          `Unknown command ${JSON.stringify(command)}. Run \`pali --help\` for the list of commands.`,
        );
    }
  } catch (error) {
    return reportError(error, json, io);
  }
}

type OptionSpec = Record<string, { type: "string" | "boolean"; short?: string }>;

function parse(args: string[], options: OptionSpec) {
  try {
    return parseArgs({ args, options, allowPositionals: false, strict: true });
  } catch (cause) {
    throw new InvalidArgumentError(`${(cause as Error).message}. Run with --help for the options.`, { cause });
  }
}
