package dev.plora.text;

import static dev.plora.testing.Refusals.assertRefused;
import static dev.plora.testing.TestTokenizers.BOS;
import static dev.plora.testing.TestTokenizers.END_OF_TEXT;
import static dev.plora.testing.TestTokenizers.IM_END;
import static dev.plora.testing.TestTokenizers.IM_START;
import static dev.plora.testing.TestTokenizers.PAD;
import static dev.plora.testing.TestTokenizers.VOCAB_SIZE;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.util.Utils;
import dev.plora.testing.TestTokenizers;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * HfTokenizer on the tiny byte-level BPE of the tests. Expected ids are derived by hand: a byte's
 * id is its value ('h' = 104, space 32, newline 10), merges apply lowest rank first (256 "he",
 * 257 "ll", 258 "hell", 259 "hello", 260 "Ġw" ... 264 "Ġworld", 265 "Ġt", 270 "user", 278
 * "assistant", 297 "Hi"; the list is in make_tiny_tokenizer.py).
 */
class HfTokenizerTest {
  @TempDir Path dir;
  HfTokenizer tokenizer;

  @BeforeEach
  void load() throws IOException {
    tokenizer = HfTokenizer.load(TestTokenizers.writeTo(dir));
  }

  @AfterEach
  void close() {
    tokenizer.close();
  }

  @Test
  void knownStringsGiveTheirIds() {
    assertArrayEquals(new int[] {259, 264}, tokenizer.ids("hello world", false));
    // "h e" outranks "Ġ t", so " the" stops at Ġt + he: Ġth and Ġthe are never reached
    assertArrayEquals(new int[] {265, 256}, tokenizer.ids(" the", false));
    assertArrayEquals(new int[] {270, 10, 278, 10, 283}, tokenizer.ids("user\nassistant\nsystem", false));
    // bytes without merges stay bytes: 'x' 'y' 'z' and 'é' as its two UTF-8 bytes
    assertArrayEquals(new int[] {120, 121, 122, 0xC3, 0xA9}, tokenizer.ids("xyzé", false));
  }

  @Test
  void addSpecialTokensAddsWhatThePostProcessorAdds() {
    assertArrayEquals(new int[] {BOS, 259, 264}, tokenizer.ids("hello world", true));
    assertArrayEquals(new int[] {BOS}, tokenizer.ids("", true));
    assertArrayEquals(new int[0], tokenizer.ids("", false));
  }

  @Test
  void specialTokensInTheTextBecomeTheirIds() {
    assertArrayEquals(new int[] {IM_START, 270, 10, 297, IM_END, 10},
        tokenizer.ids("<|im_start|>user\nHi<|im_end|>\n", false));
    assertArrayEquals(new int[] {BOS, BOS, 259, END_OF_TEXT}, tokenizer.ids("<s>hello</s>", true));
  }

  @Test
  void specialTokensAndSizeComeFromTheConfig() {
    assertEquals(VOCAB_SIZE, tokenizer.vocabSize());
    assertEquals(OptionalInt.of(BOS), tokenizer.bosId());
    assertEquals(OptionalInt.of(IM_END), tokenizer.eosId()); // an AddedToken object in the config
    assertEquals(OptionalInt.of(PAD), tokenizer.padId());
    assertEquals(OptionalInt.of(2048), tokenizer.modelMaxLength());
  }

  @Test
  void decodeRoundTripsAndSkipsSpecialTokens() {
    for (String text : List.of("hello world", "héllo wörld 日本", "a😀b c", " the user\n\nsaid  hi ", "<|im_start|>x")) {
      assertEquals(text, tokenizer.decode(tokenizer.ids(text, false), false), text);
    }
    int[] ids = {BOS, IM_START, 270, 10, 297, IM_END};
    assertEquals("<s><|im_start|>user\nHi<|im_end|>", tokenizer.decode(ids, false));
    assertEquals("user\nHi", tokenizer.decode(ids, true));
  }

  /** Spans are UTF-16 indices: the tokenizers count code points, which differ past the BMP. */
  @Test
  void spansAreJavaStringIndicesOnNonAsciiText() {
    String text = "héllo wörld 日本";
    Tokenizer.Encoding e = tokenizer.encode(text, true);
    assertArrayEquals(new int[] {BOS, 104, 0xC3, 0xA9, 257, 111, 260, 0xC3, 0xB6, 114, 108, 100, 32,
        0xE6, 0x97, 0xA5, 0xE6, 0x9C, 0xAC}, e.ids());
    // BOS empty; both bytes of 'é' span 'é'; "Ġw" spans " w"; each of the three bytes of 日 spans 日
    assertArrayEquals(new int[] {0, 0, 1, 1, 2, 4, 5, 7, 7, 8, 9, 10, 11, 12, 12, 12, 13, 13, 13}, e.starts());
    assertArrayEquals(new int[] {0, 1, 2, 2, 4, 5, 7, 8, 8, 9, 10, 11, 12, 13, 13, 13, 14, 14, 14}, e.ends());

    String emoji = "a😀b c"; // 😀 is two UTF-16 units, one code point
    Tokenizer.Encoding f = tokenizer.encode(emoji, false);
    assertArrayEquals(new int[] {97, 0xF0, 0x9F, 0x98, 0x80, 98, 287}, f.ids());
    assertArrayEquals(new int[] {0, 1, 1, 1, 1, 3, 4}, f.starts());
    assertArrayEquals(new int[] {1, 3, 3, 3, 3, 4, 6}, f.ends());
    assertEquals("😀", emoji.substring(f.starts()[2], f.ends()[2]));
    assertEquals(" c", emoji.substring(f.starts()[6], f.ends()[6]));
  }

  /** Nothing is cut at model_max_length (2048) or at DJL's default of 512. */
  @Test
  void longTextsAreNotTruncated() {
    int n = 3000;
    String text = "hello" + " hello".repeat(n - 1);
    int[] ids = tokenizer.ids(text, true);
    assertEquals(1 + 1 + 2 * (n - 1), ids.length); // BOS, "hello", then Ġ + "hello" each
    assertEquals(259, ids[ids.length - 1]);
  }

  @Test
  void configFlagsReplaceWhatThePostProcessorAdds() throws IOException {
    writeConfig("{\"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"add_bos_token\": false, \"add_eos_token\": true}");
    try (HfTokenizer t = HfTokenizer.load(dir)) {
      assertArrayEquals(new int[] {259, END_OF_TEXT}, t.ids("hello", true));
      assertArrayEquals(new int[] {259}, t.ids("hello", false));
      Tokenizer.Encoding e = t.encode("hello", true);
      assertArrayEquals(new int[] {0, 0}, e.starts());
      assertArrayEquals(new int[] {5, 0}, e.ends());
    }
    writeConfig("{\"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"add_eos_token\": true}");
    try (HfTokenizer t = HfTokenizer.load(dir)) { // add_bos_token absent: the post-processor's BOS stays
      assertArrayEquals(new int[] {BOS, 259, END_OF_TEXT}, t.ids("hello", true));
    }
  }

  @Test
  void specialTokensMapFillsWhatTheConfigLeavesOut() throws IOException {
    writeConfig("{\"pad_token\": null}");
    Files.writeString(dir.resolve("special_tokens_map.json"),
        "{\"bos_token\": {\"content\": \"<s>\", \"lstrip\": false}, \"eos_token\": \"</s>\"}");
    try (HfTokenizer t = HfTokenizer.load(dir)) {
      assertEquals(OptionalInt.of(BOS), t.bosId());
      assertEquals(OptionalInt.of(END_OF_TEXT), t.eosId());
      assertEquals(OptionalInt.empty(), t.padId());
      assertEquals(Optional.empty(), t.chatTemplate());
      assertEquals(OptionalInt.empty(), t.modelMaxLength());
    }
  }

  @Test
  void onlyTokenizerJsonIsRequired() throws IOException {
    Files.delete(dir.resolve("tokenizer_config.json"));
    try (HfTokenizer t = HfTokenizer.load(dir)) {
      assertEquals(OptionalInt.empty(), t.bosId());
      assertArrayEquals(new int[] {BOS, 259}, t.ids("hello", true)); // the post-processor still adds it
      assertEquals(VOCAB_SIZE, t.vocabSize());
    }
  }

  @Test
  void namedChatTemplatesGiveTheDefaultAndChatTemplateJinjaComesFirst() throws IOException {
    writeConfig("{\"eos_token\": \"</s>\", \"chat_template\": [{\"name\": \"tool_use\", \"template\": \"T\"},"
        + " {\"name\": \"default\", \"template\": \"{{ messages[0].content + eos_token }}\"}]}");
    List<ChatMessage> hi = List.of(new ChatMessage("user", "Hi"));
    try (HfTokenizer t = HfTokenizer.load(dir)) {
      assertEquals("Hi</s>", t.chatTemplate().orElseThrow().render(hi, false));
    }
    Files.writeString(dir.resolve("chat_template.jinja"), "[{{ messages[0].role }}]\n");
    try (HfTokenizer t = HfTokenizer.load(dir)) {
      assertEquals("[user]", t.chatTemplate().orElseThrow().render(hi, false));
    }
  }

  @Test
  void theFixturesChatMLTemplateEncodesToHandDerivedIds() {
    String text = tokenizer.chatTemplate().orElseThrow().render(List.of(new ChatMessage("user", "Hi")), true);
    assertEquals("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", text);
    assertArrayEquals(new int[] {IM_START, 270, 10, 297, IM_END, 10, IM_START, 278, 10}, tokenizer.ids(text, false));
  }

  /** A Unigram model (SentencePiece's) lists its vocabulary as [piece, score] at each id. */
  @Test
  void unigramVocabularies() throws IOException {
    Files.writeString(dir.resolve("tokenizer.json"), """
        {"version": "1.0", "truncation": null, "padding": null,
         "added_tokens": [{"id": 0, "content": "<unk>", "single_word": false, "lstrip": false, "rstrip": false,
                           "normalized": false, "special": true},
                          {"id": 5, "content": "</s>", "single_word": false, "lstrip": false, "rstrip": false,
                           "normalized": false, "special": true}],
         "normalizer": null,
         "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true},
         "post_processor": null,
         "decoder": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true},
         "model": {"type": "Unigram", "unk_id": 0, "byte_fallback": false,
                   "vocab": [["<unk>", 0.0], ["▁", -2.0], ["a", -3.0], ["b", -3.0], ["▁ab", -1.0], ["</s>", 0.0]]}}
        """);
    writeConfig("{\"eos_token\": \"</s>\", \"pad_token\": \"▁\"}");
    try (HfTokenizer t = HfTokenizer.load(dir)) {
      assertEquals(6, t.vocabSize());
      assertEquals(OptionalInt.of(5), t.eosId());
      assertEquals(OptionalInt.of(1), t.padId()); // found in the model's list, not the added tokens
      assertArrayEquals(new int[] {4}, t.ids("ab", true)); // no post-processor: nothing added
      assertArrayEquals(new int[] {1, 3, 2, 5}, t.ids("ba</s>", true));
      assertEquals("ba", t.decode(new int[] {1, 3, 2, 5}, true));
    }
  }

  @Test
  void refusesMissingAndMalformedFiles() throws IOException {
    Path empty = Files.createDirectories(dir.resolve("empty"));
    assertRefused(IllegalArgumentException.class, () -> HfTokenizer.load(empty), empty.toString(), "tokenizer.json");

    writeConfig("{\"bos_token\": \"<s>\",}");
    assertRefused(IllegalArgumentException.class, () -> HfTokenizer.load(dir), "tokenizer_config.json");
    writeConfig("{\"bos_token\": 7}");
    assertRefused(IllegalArgumentException.class, () -> HfTokenizer.load(dir), "tokenizer_config.json", "bos_token");
    writeConfig("{\"bos_token\": \"<nope>\"}");
    assertRefused(IllegalArgumentException.class, () -> HfTokenizer.load(dir), "bos_token", "<nope>");
    writeConfig("{\"add_eos_token\": true}");
    assertRefused(IllegalArgumentException.class, () -> HfTokenizer.load(dir), "add_eos_token");
    writeConfig("{\"chat_template\": 3}");
    assertRefused(IllegalArgumentException.class, () -> HfTokenizer.load(dir), "chat_template");
    TestTokenizers.writeTo(dir);

    Files.writeString(dir.resolve("special_tokens_map.json"), "[");
    assertRefused(IllegalArgumentException.class, () -> HfTokenizer.load(dir), "special_tokens_map.json");
    Files.delete(dir.resolve("special_tokens_map.json"));

    Path json = dir.resolve("tokenizer.json");
    String good = Files.readString(json);
    Files.writeString(json, good.substring(0, good.length() / 2));
    assertRefused(IllegalArgumentException.class, () -> HfTokenizer.load(dir), "tokenizer.json");
    Files.writeString(json, "{\"model\": {\"type\": \"Nonsense\", \"vocab\": {\"a\": 0}}}");
    assertRefused(IllegalArgumentException.class, () -> HfTokenizer.load(dir), "tokenizer.json", "cannot read");
    Files.writeString(json, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -1}}}");
    assertRefused(IllegalArgumentException.class, () -> HfTokenizer.load(dir), "tokenizer.json", "-1");
  }

  @Test
  void refusesBadIdsAndUseAfterClose() {
    assertRefused(IllegalArgumentException.class, () -> tokenizer.decode(new int[] {1, VOCAB_SIZE}, false),
        "ids[1]", "[0, 305)", "305");
    assertRefused(IllegalArgumentException.class, () -> tokenizer.decode(new int[] {-1}, true), "ids[0]", "-1");
    assertThrows(NullPointerException.class, () -> tokenizer.encode(null, true));
    // a lone surrogate is no character (the library would make three U+FFFD of it, spans past the end)
    assertRefused(IllegalArgumentException.class, () -> tokenizer.encode("a\uD800b", true), "text", "U+D800", "index 1");
    assertRefused(IllegalArgumentException.class, () -> tokenizer.encode("ab\uDC00", false), "U+DC00", "index 2");
    assertArrayEquals(new int[] {0xF0, 0x9F, 0x98, 0x80}, tokenizer.ids("\uD83D\uDE00", false)); // a pair is 😀
    tokenizer.close();
    tokenizer.close(); // twice is harmless
    assertRefused(IllegalStateException.class, () -> tokenizer.encode("x", true), "closed");
    assertRefused(IllegalStateException.class, () -> tokenizer.decode(new int[] {1}, true), "closed");
  }

  /** One tokenizer serves several threads (a data loader's workers) with the ids of one. */
  @Test
  void concurrentEncodesAgreeWithSequentialOnes() throws Exception {
    List<String> texts = List.of("hello world", "héllo wörld 日本", "a😀b c", "<|im_start|>user\nHi<|im_end|>\n",
        " the assistant said hello".repeat(50));
    List<int[]> expected = texts.stream().map(t -> tokenizer.ids(t, true)).toList();
    ExecutorService pool = Executors.newFixedThreadPool(4);
    try {
      List<Future<Boolean>> runs = new ArrayList<>();
      for (int w = 0; w < 4; w++) {
        runs.add(pool.submit(() -> {
          for (int i = 0; i < 200; i++) {
            int k = i % texts.size();
            if (!Arrays.equals(expected.get(k), tokenizer.ids(texts.get(k), true))) {
              return false;
            }
          }
          return true;
        }));
      }
      for (Future<Boolean> run : runs) {
        assertTrue(run.get());
      }
    } finally {
      pool.shutdownNow();
    }
  }

  @Test
  void cleanUpTokenizationFollowsHuggingFace() throws IOException {
    assertEquals("Hi, it's done. Isn't it? Yes! They're here", HfTokenizer.cleanUpTokenization(
        "Hi , it 's done . Is n't it ? Yes ! They 're here"));
    writeConfig("{\"clean_up_tokenization_spaces\": true}");
    try (HfTokenizer t = HfTokenizer.load(dir)) {
      assertEquals("hello.", t.decode(t.ids("hello .", false), true));
    }
    assertEquals("hello .", tokenizer.decode(tokenizer.ids("hello .", false), true)); // the fixture says false
  }

  /**
   * DJL, left to itself, asks EC2's metadata service on every load and downloads a CUDA build of
   * its library where it sees a supported GPU (its LibUtils). Loading sets DJL's offline mode,
   * which turns both off (a run under strace shows no connection, docs/text.md), and the library
   * is the CPU build from DJL's jar.
   */
  @Test
  void loadingIsOffline() throws IOException {
    assertTrue(Utils.isOfflineMode(), "DJL's offline mode");
    assertTrue(Boolean.parseBoolean(Utils.getEnvOrSystemProperty("OPT_OUT_TRACKING")), "DJL's telemetry off");
    String cache = System.getProperty("DJL_CACHE_DIR"); // set by the build for the tests
    if (cache != null) {
      try (Stream<Path> files = Files.walk(Path.of(cache, "tokenizers"))) {
        List<Path> libraries = files.filter(f -> f.getFileName().toString().equals("libtokenizers.so")).toList();
        assertTrue(!libraries.isEmpty() && libraries.stream().allMatch(f -> f.toString().contains("-cpu-")),
            "the CPU build from the jar: " + libraries);
      }
    }
  }

  private void writeConfig(String json) throws IOException {
    Files.writeString(dir.resolve("tokenizer_config.json"), json);
  }
}
