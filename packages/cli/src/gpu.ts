/** `--gpu auto|cuda|vulkan|metal|false` (and `--no-gpu`), taken by every command that loads the native core. */
import { parseGpuPreference } from "@pali/core";

export const gpuHelp = `  --gpu BACKEND  auto (default; $PALI_GPU), cuda, vulkan, metal, or false for the CPU; any command`;

/** The arguments without the option, and the preference it gave (undefined when absent). */
export function takeGpuOption(args: string[]): { rest: string[]; gpu: ReturnType<typeof parseGpuPreference> | undefined } {
  const rest: string[] = [];
  let gpu: ReturnType<typeof parseGpuPreference> | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === "--") {
      rest.push(...args.slice(i));
      break;
    }
    if (a === "--no-gpu") gpu = false;
    else if (a === "--gpu") {
      const value = args[i + 1];
      gpu = parseGpuPreference(value === undefined || value.startsWith("-") ? "auto" : value, "--gpu");
      if (value !== undefined && !value.startsWith("-")) i++;
    } else if (a.startsWith("--gpu=")) gpu = parseGpuPreference(a.slice("--gpu=".length), "--gpu");
    else rest.push(a);
  }
  return { rest, gpu };
}
