package dev.plora.cli;

import dev.plora.data.DataFormat;
import dev.plora.data.Dataset;
import dev.plora.data.ReadOptions;
import dev.plora.model.llama.LlamaConfig;
import dev.plora.text.Tokenizer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import picocli.CommandLine.Option;

/** How a JSONL file becomes examples: shared by finetune and eval. */
final class DataOptions {
  @Option(names = "--data", required = true, paramLabel = "FILE", description = "JSONL data, one example a line: "
      + "{\"text\"}, {\"prompt\",\"completion\"}, Alpaca {\"instruction\",\"input\",\"output\"}, "
      + "{\"messages\":[{\"role\",\"content\"}...]} or {\"input_ids\",\"labels\"}.")
  Path data;

  @Option(names = "--format", paramLabel = "NAME", description = "text, prompt_completion, alpaca, chat or tokenized "
      + "(default: from the first line's keys).")
  String format;

  @Option(names = "--seq-len", paramLabel = "TOKENS",
      description = "Longest example in tokens (default 512, or the model's max_position_embeddings if smaller).")
  Integer seqLenOption;

  /** The sequence length, set by {@link #modelConfig}. */
  int seqLen;

  @Option(names = "--truncate", negatable = true, defaultValue = "true", fallbackValue = "true",
      description = "Cut longer examples to --seq-len (default); --no-truncate refuses them.")
  boolean truncate;

  @Option(names = "--train-on-prompt", description = "Score prompt tokens too (default: completion and assistant "
      + "tokens only).")
  boolean trainOnPrompt;

  @Option(names = "--skip-bad", description = "Skip bad lines, counting them by reason (default: stop at the first, "
      + "naming its line).")
  boolean skipBad;

  /** Checks the data file and fixes the sequence length for {@code config}'s model. */
  void check(LlamaConfig config) throws IOException {
    Options.inputFile("--data", data);
    seqLen = seqLenOption != null ? seqLenOption : Math.min(512, config.maxPositionEmbeddings());
    if (seqLen < 2 || seqLen > config.maxPositionEmbeddings()) {
      throw new IllegalArgumentException("--seq-len: expected 2.." + config.maxPositionEmbeddings()
          + " (the model's max_position_embeddings), got " + seqLen);
    }
  }

  ReadOptions readOptions() {
    ReadOptions o = ReadOptions.of(seqLen).truncate(truncate).completionOnly(!trainOnPrompt).skipBad(skipBad);
    return format == null ? o : o.format(DataFormat.fromId(format));
  }

  /** {@code file} read as examples, each error naming {@code option}. */
  Dataset read(String option, Path file, Tokenizer tokenizer) throws IOException {
    Options.inputFile(option, file);
    try {
      return Dataset.read(file, tokenizer, readOptions());
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(option + ": " + e.getMessage(), e);
    }
  }

  /** What the data were, for run.json. */
  Map<String, Object> describe(Dataset train) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("file", data.toString());
    m.put("format", train.stats().format() == null ? format : train.stats().format().id());
    m.put("examples", train.size());
    m.put("tokens", train.stats().tokens());
    m.put("scored_tokens", train.stats().scoredTokens());
    m.put("seq_len", seqLen);
    m.put("truncate", truncate);
    m.put("train_on_prompt", trainOnPrompt);
    m.put("skipped_lines", train.stats().skippedLines());
    return m;
  }
}
