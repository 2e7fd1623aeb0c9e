package dev.plora.data;

import static dev.plora.data.CharTokenizer.BOS;
import static dev.plora.data.CharTokenizer.EOS;
import static dev.plora.data.CharTokenizer.IM_END;
import static dev.plora.data.CharTokenizer.IM_START;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.data.DataFormatException.Reason;
import dev.plora.text.ChatTemplate;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** JSONL lines of every format to exact tokens and labels, and every kind of bad line. */
class DatasetTest {
  private static final int I = Example.IGNORE;
  private static final ReadOptions OPTIONS = ReadOptions.of(256);

  @TempDir
  Path dir;

  private Path write(String... lines) throws Exception {
    Path file = dir.resolve("train.jsonl");
    Files.writeString(file, String.join("\n", lines) + "\n");
    return file;
  }

  private Dataset read(ReadOptions options, String... lines) throws Exception {
    return Dataset.read(write(lines), new CharTokenizer(), options);
  }

  /** Token ids and labels built piece by piece: text one id a character, integers as they are. */
  private static final class Expected {
    final List<Integer> ids = new ArrayList<>(), labels = new ArrayList<>();

    Expected add(boolean scored, Object... parts) {
      for (Object p : parts) {
        if (p instanceof Integer id) {
          ids.add(id);
        } else {
          ((String) p).chars().forEach(c -> ids.add(CharTokenizer.id((char) c)));
        }
      }
      while (labels.size() < ids.size()) {
        labels.add(scored ? ids.get(labels.size()) : I);
      }
      return this;
    }

    Example example() {
      return new Example(ids.stream().mapToInt(Integer::intValue).toArray(),
          labels.stream().mapToInt(Integer::intValue).toArray());
    }
  }

  @Test
  void textScoresEveryTokenAndEndsWithEos() throws Exception {
    Dataset d = read(OPTIONS, "{\"text\": \"hi\"}");
    // 'h' = 104 → 6 + 72 = 78, 'i' → 79
    assertEquals(List.of(new Example(new int[] {BOS, 78, 79, EOS}, new int[] {BOS, 78, 79, EOS})), d.examples());
    assertEquals(new ReadStats(DataFormat.TEXT, 1, 4, 3, 0, 0, Map.of()), d.stats());
  }

  @Test
  void promptCompletionScoresTheCompletionAndEos() throws Exception {
    String line = "{\"prompt\": \"a\", \"completion\": \"bc\"}";
    assertEquals(new Example(new int[] {BOS, 71, 72, 73, EOS}, new int[] {I, I, 72, 73, EOS}),
        read(OPTIONS, line).examples().get(0));
    assertEquals(new Example(new int[] {BOS, 71, 72, 73, EOS}, new int[] {BOS, 71, 72, 73, EOS}),
        read(OPTIONS.completionOnly(false), line).examples().get(0));
  }

  @Test
  void alpacaUsesStanfordPromptsWithAndWithoutInput() throws Exception {
    Dataset d = read(OPTIONS,
        "{\"instruction\": \"Add.\", \"input\": \"1 2\", \"output\": \"3\"}",
        "{\"instruction\": \"Greet.\", \"input\": \"\", \"output\": \"Hi\"}",
        "{\"instruction\": \"Greet.\", \"output\": \"Hi\"}");
    Example withInput = new Expected().add(false, BOS, "Below is an instruction that describes a task, paired with an "
        + "input that provides further context. Write a response that appropriately completes the request.\n\n"
        + "### Instruction:\nAdd.\n\n### Input:\n1 2\n\n### Response:\n").add(true, "3", EOS).example();
    Example withoutInput = new Expected().add(false, BOS, "Below is an instruction that describes a task. Write a "
        + "response that appropriately completes the request.\n\n### Instruction:\nGreet.\n\n### Response:\n")
        .add(true, "Hi", EOS).example();
    assertEquals(List.of(withInput, withoutInput, withoutInput), d.examples());
    assertEquals(DataFormat.ALPACA, d.stats().format());
  }

  @Test
  void chatScoresOnlyTheAssistantReplies() throws Exception {
    Dataset d = read(OPTIONS, "{\"messages\": ["
        + "{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"hi\"}, "
        + "{\"role\": \"assistant\", \"content\": \"yo\"}, {\"role\": \"user\", \"content\": \"ok?\"}, "
        + "{\"role\": \"assistant\", \"content\": \"ok\"}]}");
    // as HF's apply_chat_template: no BOS of the tokenizer's own; the reply, its <|im_end|> and line break scored
    Example expected = new Expected()
        .add(false, IM_START, "system\nBe brief.", IM_END, "\n", IM_START, "user\nhi", IM_END, "\n",
            IM_START, "assistant\n")
        .add(true, "yo", IM_END, "\n")
        .add(false, IM_START, "user\nok?", IM_END, "\n", IM_START, "assistant\n")
        .add(true, "ok", IM_END, "\n").example();
    assertEquals(List.of(expected), d.examples());
    assertEquals(8, d.stats().scoredTokens());
  }

  @Test
  void chatNeedsATemplate() throws Exception {
    Path file = write("{\"messages\": [{\"role\": \"assistant\", \"content\": \"x\"}]}");
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> Dataset.read(file, new CharTokenizer(true, true, null), OPTIONS));
    assertTrue(e.getMessage().startsWith(file + ": ") && e.getMessage().contains("chat template"), e.getMessage());
  }

  @Test
  void textNeedsAnEosId() throws Exception {
    Path file = write("{\"text\": \"x\"}");
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> Dataset.read(file, new CharTokenizer(true, false, null), OPTIONS));
    assertTrue(e.getMessage().contains("no EOS id"), e.getMessage());
  }

  @Test
  void chatTemplateThatRendersAPrefixDifferentlyIsRefusedForThatLine() throws Exception {
    // a Qwen3-like generation prompt, "<think>" and all, that the whole conversation does not contain
    ChatTemplate thinking = (messages, generationPrompt) -> CharTokenizer.CHATML.render(messages, false)
        + (generationPrompt ? "<|im_start|>assistant\n<think>\n\n</think>\n\n" : "");
    Path file = write("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, "
        + "{\"role\": \"assistant\", \"content\": \"yo\"}]}");
    DataFormatException e = assertThrows(DataFormatException.class,
        () -> Dataset.read(file, new CharTokenizer(true, true, thinking), OPTIONS));
    assertEquals(Reason.CHAT_TEMPLATE, e.reason());
    assertEquals(1, e.line());
    assertTrue(e.getMessage().startsWith(file + ":1: chat template: ") && e.getMessage().contains("message 1"),
        e.getMessage());
  }

  @Test
  void tokenizedLinesKeepTheirIdsAndLabels() throws Exception {
    Dataset d = read(OPTIONS, "{\"input_ids\": [5, 6, 7]}", "{\"input_ids\": [5, 6, 7], \"labels\": [-100, 6, -100]}");
    assertEquals(List.of(new Example(new int[] {5, 6, 7}, new int[] {5, 6, 7}),
        new Example(new int[] {5, 6, 7}, new int[] {I, 6, I})), d.examples());
    assertEquals(new ReadStats(DataFormat.TOKENIZED, 2, 6, 3, 0, 0, Map.of()), d.stats());
  }

  @Test
  void theFormatIsDetectedFromTheFirstValidLineOrGiven() throws Exception {
    Dataset d = read(OPTIONS.skipBad(true), "not json", "{\"prompt\": \"a\", \"completion\": \"b\"}",
        "{\"text\": \"c\"}");
    assertEquals(DataFormat.PROMPT_COMPLETION, d.stats().format());
    assertEquals(Map.of(Reason.INVALID_JSON, 1, Reason.MISSING_FIELD, 1), d.stats().skipped());
    DataFormatException e = assertThrows(DataFormatException.class,
        () -> read(OPTIONS.format(DataFormat.PROMPT_COMPLETION), "{\"text\": \"c\"}"));
    assertEquals(Reason.MISSING_FIELD, e.reason());
    assertEquals(DataFormat.CHAT, DataFormat.fromId("Chat"));
  }

  static Stream<Arguments> badLines() {
    String pc = "{\"prompt\": \"a\", \"completion\": \"b\"}", ids = "{\"input_ids\": [1, 2]}";
    String alpaca = "{\"instruction\": \"a\", \"output\": \"b\"}";
    String chat = "{\"messages\": [{\"role\": \"assistant\", \"content\": \"x\"}]}";
    return Stream.of(
        Arguments.of(pc, "{\"prompt\": \"a\", \"completion\": \"b\"", Reason.INVALID_JSON, ":3: invalid JSON: at offset 33: "),
        Arguments.of(pc, "[1, 2]", Reason.WRONG_TYPE, "expected a JSON object, got an array"),
        Arguments.of(pc, "{\"prompt\": \"a\"}", Reason.MISSING_FIELD, "\"completion\" is missing"),
        Arguments.of(pc, "{\"prompt\": \"a\", \"completion\": 7}", Reason.WRONG_TYPE,
            "\"completion\": expected a string, got 7"),
        Arguments.of(pc, "{\"prompt\": \"a\", \"completion\": \"\"}", Reason.EMPTY, "\"completion\" is empty"),
        Arguments.of(alpaca, "{\"instruction\": \"a\", \"output\": \"\"}", Reason.EMPTY, "\"output\" is empty"),
        Arguments.of(alpaca, "{\"instruction\": \"a\", \"input\": [], \"output\": \"b\"}", Reason.WRONG_TYPE,
            "\"input\": expected a string, got an array"),
        Arguments.of(chat, "{\"messages\": [{\"role\": \"assistant\"}]}", Reason.MISSING_FIELD,
            "messages[0].content is missing"),
        Arguments.of(chat, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}", Reason.NO_SCORED_TOKEN,
            "no assistant message"),
        Arguments.of(ids, "{\"input_ids\": [1, 2, 101]}", Reason.ID_OUT_OF_RANGE,
            "input_ids[2]: expected an id in [0, 101), got 101"),
        Arguments.of(ids, "{\"input_ids\": [-1, 2]}", Reason.ID_OUT_OF_RANGE, "input_ids[0]"),
        Arguments.of(ids, "{\"input_ids\": [1, 2], \"labels\": [1, 500]}", Reason.ID_OUT_OF_RANGE,
            "labels[1]: expected -100 or an id in [0, 101), got 500"),
        Arguments.of(ids, "{\"input_ids\": [1, 99999999999]}", Reason.ID_OUT_OF_RANGE, "99999999999 is not an id"),
        Arguments.of(ids, "{\"input_ids\": [1, 2.5]}", Reason.WRONG_TYPE, "input_ids[1]: expected an integer, got 2.5"),
        Arguments.of(ids, "{\"input_ids\": [1, 2], \"labels\": [1]}", Reason.LENGTH_MISMATCH,
            "1 labels for 2 input_ids"),
        Arguments.of(ids, "{\"input_ids\": [1, 2], \"labels\": [1, -100]}", Reason.NO_SCORED_TOKEN,
            "none of its 2 tokens is scored"),
        Arguments.of(ids, "{\"input_ids\": [7]}", Reason.NO_SCORED_TOKEN, "none of its 1 tokens is scored"),
        Arguments.of(pc, "{\"prompt\": \"a\", \"completion\": \"" + "x".repeat(260) + "\"}", Reason.TOO_LONG,
            "263 tokens, over seqLen 256 (truncation is off)"),
        Arguments.of(ids, "{\"text\": \"a\"}", Reason.MISSING_FIELD, "\"input_ids\" is missing"));
  }

  @ParameterizedTest(name = "{2}: {1}")
  @MethodSource("badLines")
  void aBadLineIsRefusedWithFileLineAndReason(String good, String bad, Reason reason, String detail) throws Exception {
    Path file = write(good, "", bad, good); // the blank line 2 counts as a line
    DataFormatException e = assertThrows(DataFormatException.class,
        () -> Dataset.read(file, new CharTokenizer(), OPTIONS));
    assertEquals(reason, e.reason());
    assertEquals(3, e.line());
    assertEquals(file, e.file());
    assertTrue(e.getMessage().startsWith(file + ":3: " + reason + ": "), e.getMessage());
    assertTrue(e.getMessage().contains(detail), e.getMessage());
    // skipped instead: counted under its reason, the good lines kept
    Dataset d = Dataset.read(file, new CharTokenizer(), OPTIONS.skipBad(true));
    assertEquals(2, d.size());
    assertEquals(Map.of(reason, 1), d.stats().skipped());
  }

  @Test
  void aFirstLineOfNoKnownFormatIsRefused() throws Exception {
    DataFormatException e = assertThrows(DataFormatException.class, () -> read(OPTIONS, "{\"foo\": 1}"));
    assertEquals(Reason.UNKNOWN_FORMAT, e.reason());
    assertTrue(e.getMessage().contains(":1: no known format: ") && e.getMessage().contains("[foo]"), e.getMessage());
  }

  @Test
  void skippedLinesAreCountedByReason() throws Exception {
    Dataset d = read(OPTIONS.skipBad(true), "{\"text\": \"a\"}", "{oops", "", "{\"text\": 1}", "{\"text\": \"\"}",
        "   ", "{\"text\": \"b\"}", "[]", "{\"text\": \"" + "z".repeat(255) + "\"}");
    assertEquals(2, d.size());
    assertEquals(Map.of(Reason.INVALID_JSON, 1, Reason.WRONG_TYPE, 2, Reason.EMPTY, 1, Reason.TOO_LONG, 1),
        d.stats().skipped());
    assertEquals(5, d.stats().skippedLines());
    assertEquals("2 examples (text), 6 tokens, 4 scored; skipped 5: 1 invalid JSON, 2 wrong type, 1 empty text, "
        + "1 too long", d.stats().summary());
  }

  @Test
  void truncationKeepsTheStartAndDropsExamplesLeftWithNothingToScore() throws Exception {
    ReadOptions options = ReadOptions.of(6).truncate(true);
    Dataset d = read(options, "{\"prompt\": \"a\", \"completion\": \"bcdefghij\"}",
        "{\"prompt\": \"abcdefgh\", \"completion\": \"x\"}", "{\"prompt\": \"a\", \"completion\": \"b\"}");
    assertEquals(List.of(new Example(new int[] {BOS, 71, 72, 73, 74, 75}, new int[] {I, I, 72, 73, 74, 75}),
        new Example(new int[] {BOS, 71, 72, EOS}, new int[] {I, I, 72, EOS})), d.examples());
    assertEquals(new ReadStats(DataFormat.PROMPT_COMPLETION, 2, 10, 6, 2, 1, Map.of()), d.stats());
    assertTrue(d.stats().summary().endsWith("; 2 truncated, 1 of them dropped with nothing left to score"),
        d.stats().summary());
  }

  @Test
  void lineBreaksOfAnyKindAndAByteOrderMarkAreRead() throws Exception {
    Path file = dir.resolve("crlf.jsonl");
    Files.writeString(file, "\uFEFF{\"text\": \"a\"}\r\n\r\n{\"text\": \"b\"}\r\n{\"text\": \"c\"}");
    Dataset d = Dataset.read(file, new CharTokenizer(), OPTIONS);
    assertEquals(List.of(71, 72, 73), d.examples().stream().map(e -> e.inputIds()[1]).toList());
  }

  @Test
  void invalidUtf8IsABadLine() throws Exception {
    Path file = dir.resolve("latin1.jsonl");
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    bytes.writeBytes("{\"text\": \"a\"}\n{\"text\": \"caf".getBytes(StandardCharsets.UTF_8));
    bytes.write(0xE9); // é in Latin-1
    bytes.writeBytes("\"}\n".getBytes(StandardCharsets.UTF_8));
    Files.write(file, bytes.toByteArray());
    DataFormatException e = assertThrows(DataFormatException.class,
        () -> Dataset.read(file, new CharTokenizer(), OPTIONS));
    assertEquals(2, e.line());
    assertTrue(e.getMessage().contains("not valid UTF-8"), e.getMessage());
  }

  @Test
  void aTokenizerFailureNamesTheLine() throws Exception {
    // CharTokenizer has no token for 'é': its own exception, with the file and line put in front
    IllegalStateException e = assertThrows(IllegalStateException.class,
        () -> read(OPTIONS, "{\"text\": \"a\"}", "{\"text\": \"caf\u00e9\"}"));
    assertTrue(e.getMessage().contains("train.jsonl:2: the tokenizer failed: CharTokenizer: no token"), e.getMessage());
  }

  @Test
  void heldOutSplitIsChosenBySeed() throws Exception {
    List<Example> examples = new ArrayList<>();
    for (int i = 0; i < 50; i++) {
      examples.add(new Example(new int[] {i, i + 1}, new int[] {i, i + 1}));
    }
    Dataset all = Dataset.of(examples);
    Dataset.Split a = all.split(0.2, 7), b = all.split(0.2, 7), c = all.split(0.2, 8);
    assertEquals(a.heldOut().examples(), b.heldOut().examples());
    assertEquals(a.train().examples(), b.train().examples());
    assertNotEquals(a.heldOut().examples(), c.heldOut().examples());
    assertEquals(10, a.heldOut().size());
    assertEquals(40, a.train().size());
    Set<Example> union = new HashSet<>(a.train().examples());
    union.addAll(a.heldOut().examples());
    assertEquals(new HashSet<>(examples), union);
    // each part keeps the file's order
    assertTrue(isInFileOrder(a.heldOut()) && isInFileOrder(a.train()));
    assertEquals(1, all.split(0.001, 7).heldOut().size());
    assertEquals(0, all.split(0, 7).heldOut().size());
    assertThrows(IllegalArgumentException.class, () -> all.split(1, 7));
    assertThrows(IllegalArgumentException.class, () -> Dataset.of(examples.subList(0, 1)).split(0.5, 7));
  }

  private static boolean isInFileOrder(Dataset d) {
    for (int i = 1; i < d.size(); i++) {
      if (d.examples().get(i).inputIds()[0] <= d.examples().get(i - 1).inputIds()[0]) {
        return false;
      }
    }
    return true;
  }

  @Test
  void exampleChecksItsShapeAndCountsScoredTokensAfterTheFirst() {
    assertEquals(1, new Example(new int[] {1, 2, 3}, new int[] {1, I, 3}).scoredTokens());
    assertArrayEquals(new int[] {1, 2}, new Example(new int[] {1, 2, 3}, new int[] {1, 2, 3}).truncated(2).inputIds());
    assertThrows(IllegalArgumentException.class, () -> new Example(new int[] {1, 2}, new int[] {1}));
    assertThrows(IllegalArgumentException.class, () -> new Example(new int[0], new int[0]));
  }
}
