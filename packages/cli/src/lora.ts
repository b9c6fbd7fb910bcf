/** `--lora FILE[:SCALE]`, repeatable: the adapters a command loads (PaliGemma.load's adapters). */
import { InvalidArgumentError } from "@pali/core";
import type { AdapterOption } from "@pali/sdk";

export const loraHelp = `      --lora FILE[:SCALE]  a LoRA adapter (pali convert --lora's lora-<name>-f32.gguf; its vision part
                           mmproj-lora-<name>-f32.gguf is found beside it), at SCALE (default 1); repeatable`;

export function loraAdapters(values: unknown): { adapters?: AdapterOption[] } {
  if (values === undefined) return {};
  const list = (Array.isArray(values) ? values : [values]) as string[];
  return {
    adapters: list.map((value) => {
      // The scale follows the last colon, so Windows paths (C:\…) still work.
      const m = /^(.+):([^:\\/]*)$/.exec(value);
      if (m && /^[-+]?\d/.test(m[2] as string)) {
        const scale = Number(m[2]);
        if (!Number.isFinite(scale))
          throw new InvalidArgumentError(`Expected FILE:SCALE with a number for --lora but received ${value}`);
        return { path: m[1] as string, scale };
      }
      return { path: value };
    }),
  };
}
