/**
 * Renders chat messages into the prompt text with the model's own chat template (the Jinja template
 * stored in the GGUF file's `tokenizer.chat_template`), pure. The text keeps the template's special
 * tokens (e.g. `<|im_start|>`), so it must be tokenized with special tokens enabled.
 */
import { Template } from "@huggingface/jinja";
import type { ChatMessage } from "../../../shared/contracts/index.js";

/** A compiled chat template. */
export interface ChatPrompt {
  render(messages: readonly ChatMessage[]): string;
}

/** Compiles `source`; throws when the model has no template or it does not parse. */
export function chatPrompt(
  source: string | undefined,
  specials: { bos?: string; eos?: string } = {},
): ChatPrompt {
  if (!source) throw new Error("the model has no chat template (tokenizer.chat_template)");
  const template = new Template(source);
  return {
    render: (messages) =>
      template.render({
        messages: messages.map((m) => ({ role: m.role, content: m.content })),
        add_generation_prompt: true,
        bos_token: specials.bos ?? "",
        eos_token: specials.eos ?? "",
      }),
  };
}
