package dev.plora.cli;

import dev.plora.backend.Backend;
import dev.plora.generate.GenerationConfig;
import dev.plora.generate.Generator;
import dev.plora.model.llama.LlamaForCausalLM;
import dev.plora.text.ChatMessage;
import dev.plora.text.ChatTemplate;
import dev.plora.text.Tokenizer;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code plora generate}: text from a model (and adapter), printed as it comes. */
@Command(name = "generate", sortOptions = false, description = {
    "Generate text with a model folder, optionally with a PEFT adapter: greedy by default, or sampled",
    "(--temperature, --top-k, --top-p, --seed); tokens are printed as they come, speed at the end.",
    "--chat reads user turns from stdin, one a line, and answers each with the model's chat template."})
final class GenerateCommand implements Callable<Integer> {
  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Mixin ModelOptions model;

  @Option(names = "--adapter", paramLabel = "DIR", description = "PEFT adapter folder to apply to the model.")
  Path adapter;

  static final class Input {
    @Option(names = "--prompt", required = true, paramLabel = "TEXT", description = "Text to continue.")
    String prompt;

    @Option(names = "--chat", required = true, description = "Chat on stdin with the model's chat template.")
    boolean chat;
  }

  @ArgGroup(exclusive = true, multiplicity = "1")
  Input input;

  @Option(names = "--system", paramLabel = "TEXT", description = "--chat: a system message first.")
  String system;

  @Option(names = "--max-new-tokens", defaultValue = "256", description = "Most tokens made per answer (default 256).")
  int maxNewTokens;

  @Option(names = "--temperature", defaultValue = "0", description = "0 (default): greedy; above: sampling.")
  float temperature;

  @Option(names = "--top-k", defaultValue = "0", description = "Sample among the k likeliest tokens (0: off).")
  int topK;

  @Option(names = "--top-p", defaultValue = "1", description = "Nucleus sampling mass (1: off).")
  float topP;

  @Option(names = "--seed", defaultValue = "0", description = "Seed of sampling (default 0).")
  long seed;

  @Override
  public Integer call() throws Exception {
    model.config();
    if (adapter != null) {
      Options.adapterFolder("--adapter", adapter);
    }
    model.dtype(); // a bad --dtype is refused before anything loads
    PrintWriter out = spec.commandLine().getOut(), err = spec.commandLine().getErr();
    try (Tokenizer tokenizer = model.tokenizer(); Backend b = model.backend()) {
      ChatTemplate template = input.chat ? tokenizer.chatTemplate().orElseThrow(() -> new IllegalArgumentException(
          "--chat: " + model.model + " has no chat template (tokenizer_config.json's chat_template)")) : null;
      GenerationConfig gc = new GenerationConfig(maxNewTokens, temperature, topK, topP, seed,
          model.stopTokenIds(tokenizer));
      try (LlamaForCausalLM m = model.load(b, adapter)) {
        Generator generator = new Generator(m, gc);
        if (!input.chat) {
          answer(generator, tokenizer, tokenizer.ids(input.prompt, true), out, err);
          return 0;
        }
        List<ChatMessage> messages = new ArrayList<>();
        if (system != null) {
          messages.add(new ChatMessage("system", system));
        }
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line; (line = in.readLine()) != null; ) {
          if (line.isBlank()) {
            continue;
          }
          messages.add(new ChatMessage("user", line));
          int[] prompt = tokenizer.ids(template.render(messages, true), false);
          String reply = answer(generator, tokenizer, prompt, out, err);
          messages.add(new ChatMessage("assistant", reply));
        }
      }
    }
    return 0;
  }

  /**
   * The text of generated ids without special tokens; ids past the tokenizer's vocabulary (a model's
   * vocab_size is often padded beyond it) have no text and are left out, as Hugging Face does.
   */
  private static String decode(Tokenizer tokenizer, int[] ids) {
    return tokenizer.decode(java.util.Arrays.stream(ids).filter(id -> id < tokenizer.vocabSize()).toArray(), true);
  }

  /** Generates from {@code prompt}, printing text as tokens come; returns the text without special tokens. */
  private static String answer(Generator generator, Tokenizer tokenizer, int[] prompt, PrintWriter out,
      PrintWriter err) {
    List<Integer> made = new ArrayList<>();
    StringBuilder shown = new StringBuilder();
    Generator.Result r = generator.generate(prompt, token -> {
      made.add(token);
      // decode everything so far: a token may complete a character the previous one began
      String text = decode(tokenizer, made.stream().mapToInt(Integer::intValue).toArray());
      if (text.startsWith(shown.toString()) && !text.endsWith("\uFFFD")) {
        out.print(text.substring(shown.length()));
        out.flush();
        shown.setLength(0);
        shown.append(text);
      }
    });
    String text = decode(tokenizer, r.tokens());
    if (text.startsWith(shown.toString())) {
      out.print(text.substring(shown.length()));
    }
    out.println();
    out.flush();
    Generator.Stats s = r.stats();
    err.printf(Locale.ROOT, "%d prompt tokens (%.1f tokens/s), %d new tokens (%.1f tokens/s), stopped by %s%n",
        s.promptTokens(), s.prefillTokensPerSecond(), s.newTokens(), s.decodeTokensPerSecond(),
        r.stopReason() == Generator.StopReason.STOP_TOKEN ? "a stop token" : "--max-new-tokens");
    err.flush();
    return text;
  }
}
