package dev.plora.text;

import ai.djl.engine.EngineException;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.djl.huggingface.tokenizers.jni.CharSpan;
import dev.plora.io.Json;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * The tokenizer of a Hugging Face model folder: tokenizer.json run by Hugging Face's own (Rust)
 * tokenizers through DJL, with tokenizer_config.json's special tokens, BOS/EOS flags and chat
 * template. Encodes as {@code tokenizer(text, add_special_tokens=...)} does: never truncated or
 * padded.
 *
 * <p>Loading never touches the network: DJL's offline mode is set before DJL is first used (see
 * {@link #preferOffline}), so the CPU library in DJL's jar is used on every machine.
 */
public final class HfTokenizer implements Tokenizer {
  static final String TOKENIZER_JSON = "tokenizer.json";
  /** Large vocabularies (Gemma's 256k) make tokenizer.json some 35 MB. */
  static final long MAX_TOKENIZER_BYTES = 512L << 20;

  static {
    preferOffline();
  }

  private final HuggingFaceTokenizer tokenizer;
  private final Path dir;
  private final int vocabSize;
  private final OptionalInt bosId;
  private final OptionalInt eosId;
  private final OptionalInt padId;
  /** null: the post-processor decides; else tokenizer_config.json's add_bos_token / add_eos_token. */
  private final Boolean addBos;
  private final Boolean addEos;
  private final boolean cleanUpSpaces;
  private final OptionalInt modelMaxLength;
  private final Optional<ChatTemplate> chatTemplate;
  /** Read: a call into the native tokenizer; write: freeing it. */
  private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
  private boolean closed;

  private HfTokenizer(HuggingFaceTokenizer tokenizer, Path dir, Vocabulary vocab, TokenizerConfig config) {
    this.tokenizer = tokenizer;
    this.dir = dir;
    this.vocabSize = vocab.size;
    this.bosId = vocab.idOf(config.bosToken(), "bos_token", dir);
    this.eosId = vocab.idOf(config.eosToken(), "eos_token", dir);
    this.padId = vocab.idOf(config.padToken(), "pad_token", dir);
    this.addBos = config.addBosToken();
    this.addEos = config.addEosToken();
    if (Boolean.TRUE.equals(addBos) && bosId.isEmpty() || Boolean.TRUE.equals(addEos) && eosId.isEmpty()) {
      throw new IllegalArgumentException(dir.resolve(TokenizerConfig.CONFIG) + ": add_bos_token/add_eos_token "
          + "is true but the folder names no such token");
    }
    this.cleanUpSpaces = config.cleanUpTokenizationSpaces();
    this.modelMaxLength = config.modelMaxLength();
    this.chatTemplate = Optional.ofNullable(config.chatTemplate())
        .map(t -> new JinjaChatTemplate(t, config.bosToken(), config.eosToken()));
  }

  /**
   * Loads {@code modelDir/tokenizer.json} and the optional tokenizer_config.json,
   * special_tokens_map.json and chat_template.jinja beside it.
   *
   * @throws IllegalArgumentException naming the file, when one is missing, malformed or not a
   *     tokenizer
   */
  public static HfTokenizer load(Path modelDir) throws IOException {
    Objects.requireNonNull(modelDir, "modelDir");
    Path file = modelDir.resolve(TOKENIZER_JSON);
    if (!Files.isRegularFile(file)) {
      throw new IllegalArgumentException(modelDir + ": no " + TOKENIZER_JSON
          + " (a Hugging Face model folder with a fast tokenizer has one)");
    }
    TokenizerConfig config = TokenizerConfig.read(modelDir);
    String json = Json.readSmallFile(file, MAX_TOKENIZER_BYTES, "a tokenizer");
    Vocabulary vocab;
    try {
      vocab = Vocabulary.of(Json.parse(json));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
    }
    HuggingFaceTokenizer tokenizer;
    try {
      // no truncation or padding: HF applies neither unless asked, and a cut must never be silent
      tokenizer = HuggingFaceTokenizer.newInstance(
          new ByteArrayInputStream(json.getBytes(StandardCharsets.UTF_8)),
          Map.of("truncation", "false", "padding", "false"));
    } catch (EngineException e) { // the native library, not the file
      throw new IllegalStateException("Hugging Face tokenizers' native library did not load: " + e.getMessage(), e);
    } catch (RuntimeException e) {
      throw new IllegalArgumentException(file + ": Hugging Face tokenizers cannot read it: " + e.getMessage(), e);
    }
    try {
      return new HfTokenizer(tokenizer, modelDir, vocab, config);
    } catch (RuntimeException e) {
      tokenizer.close();
      throw e;
    }
  }

  /**
   * DJL downloads a CUDA build of its tokenizers library on a machine with a GPU it knows, and on
   * EC2 it calls home; in offline mode it takes the CPU build its jar carries and sends nothing.
   * Set unless the user set them: the environment (DJL_OFFLINE, OPT_OUT_TRACKING) wins anyway.
   */
  static void preferOffline() {
    if (System.getProperty("ai.djl.offline") == null) {
      System.setProperty("ai.djl.offline", "true");
    }
    if (System.getProperty("OPT_OUT_TRACKING") == null) {
      System.setProperty("OPT_OUT_TRACKING", "true");
    }
  }

  @Override
  public Encoding encode(String text, boolean addSpecialTokens) {
    Objects.requireNonNull(text, "text");
    int[] utf16 = utf16Index(text);
    ai.djl.huggingface.tokenizers.Encoding e;
    lock.readLock().lock();
    try {
      requireOpen();
      e = tokenizer.encode(text, addSpecialTokens, false);
    } finally {
      lock.readLock().unlock();
    }
    long[] ids = e.getIds();
    long[] special = e.getSpecialTokenMask(); // 1 only where the post-processor added a token
    CharSpan[] spans = e.getCharTokenSpans();
    // tokenizer_config.json's flags replace what the post-processor adds at their end, as HF's
    // Llama tokenizers rebuild their post-processor from them
    int from = 0;
    int to = ids.length;
    boolean bos = false;
    boolean eos = false;
    if (addSpecialTokens && addBos != null) {
      while (from < to && special[from] == 1) {
        from++;
      }
      bos = addBos;
    }
    if (addSpecialTokens && addEos != null) {
      while (to > from && special[to - 1] == 1) {
        to--;
      }
      eos = addEos;
    }
    int n = (bos ? 1 : 0) + (to - from) + (eos ? 1 : 0);
    int[] outIds = new int[n];
    int[] starts = new int[n];
    int[] ends = new int[n];
    int k = 0;
    if (bos) {
      outIds[k++] = bosId.getAsInt();
    }
    for (int i = from; i < to; i++, k++) {
      outIds[k] = Math.toIntExact(ids[i]);
      if (spans[i] != null) { // null for a token the post-processor added: an empty span
        starts[k] = utf16 == null ? spans[i].getStart() : utf16[spans[i].getStart()];
        ends[k] = utf16 == null ? spans[i].getEnd() : utf16[spans[i].getEnd()];
      }
    }
    if (eos) {
      outIds[k] = eosId.getAsInt();
    }
    return new Encoding(outIds, starts, ends);
  }

  /**
   * The tokenizers' spans count Unicode code points; Java strings count UTF-16 units. The index of
   * each code point (and of the end) in the string, or null when the two agree (no surrogates).
   * A lone surrogate is refused: it is no character, and the library would make three U+FFFD of it.
   */
  private static int[] utf16Index(String text) {
    boolean surrogates = false;
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      if (Character.isSurrogate(c)) {
        if (!Character.isHighSurrogate(c) || i + 1 == text.length() || !Character.isLowSurrogate(text.charAt(i + 1))) {
          throw new IllegalArgumentException("text: expected valid UTF-16, got a lone surrogate U+"
              + Integer.toHexString(c).toUpperCase(Locale.ROOT) + " at index " + i);
        }
        surrogates = true;
        i++;
      }
    }
    if (!surrogates) {
      return null;
    }
    int points = text.codePointCount(0, text.length());
    int[] index = new int[points + 1];
    for (int p = 0, i = 0; p < points; p++) {
      index[p] = i;
      i += Character.charCount(text.codePointAt(i));
    }
    index[points] = text.length();
    return index;
  }

  @Override
  public String decode(int[] ids, boolean skipSpecialTokens) {
    Objects.requireNonNull(ids, "ids");
    long[] wide = new long[ids.length];
    for (int i = 0; i < ids.length; i++) {
      if (ids[i] < 0 || ids[i] >= vocabSize) {
        throw new IllegalArgumentException("ids[" + i + "]: expected a token id in [0, " + vocabSize + "), got " + ids[i]);
      }
      wide[i] = ids[i];
    }
    String text;
    lock.readLock().lock();
    try {
      requireOpen();
      text = tokenizer.decode(wide, skipSpecialTokens);
    } finally {
      lock.readLock().unlock();
    }
    return cleanUpSpaces ? cleanUpTokenization(text) : text;
  }

  /** Hugging Face's clean_up_tokenization, applied when tokenizer_config.json asks for it. */
  static String cleanUpTokenization(String text) {
    return text.replace(" .", ".").replace(" ?", "?").replace(" !", "!").replace(" ,", ",")
        .replace(" ' ", "'").replace(" n't", "n't").replace(" 'm", "'m").replace(" 's", "'s")
        .replace(" 've", "'ve").replace(" 're", "'re");
  }

  @Override
  public int vocabSize() {
    return vocabSize;
  }

  @Override
  public OptionalInt bosId() {
    return bosId;
  }

  @Override
  public OptionalInt eosId() {
    return eosId;
  }

  @Override
  public OptionalInt padId() {
    return padId;
  }

  @Override
  public Optional<ChatTemplate> chatTemplate() {
    return chatTemplate;
  }

  /** tokenizer_config.json's model_max_length; empty when absent or Hugging Face's "no limit". */
  public OptionalInt modelMaxLength() {
    return modelMaxLength;
  }

  /** Waits for encodes and decodes under way: the native tokenizer is freed after the last. */
  @Override
  public void close() {
    lock.writeLock().lock();
    try {
      if (!closed) {
        closed = true;
        tokenizer.close();
      }
    } finally {
      lock.writeLock().unlock();
    }
  }

  private void requireOpen() {
    if (closed) {
      throw new IllegalStateException("the tokenizer of " + dir + " is closed");
    }
  }

  @Override
  public String toString() {
    return "HfTokenizer[" + dir + ", " + vocabSize + " tokens]";
  }

  /** The ids tokenizer.json gives its tokens: the model's vocabulary and the added tokens. */
  private record Vocabulary(Map<?, ?> model, List<?> added, int size) {

    static Vocabulary of(Object json) {
      if (!(json instanceof Map<?, ?> root) || !(root.get("model") instanceof Map<?, ?> model)) {
        throw new IllegalArgumentException("expected a JSON object with a \"model\"");
      }
      List<?> added = root.get("added_tokens") instanceof List<?> a ? a : List.of();
      long max = -1;
      Object vocab = model.get("vocab");
      if (vocab instanceof Map<?, ?> ids) { // BPE, WordPiece, WordLevel: token -> id
        for (Object id : ids.values()) {
          max = Math.max(max, id(id));
        }
      } else if (vocab instanceof List<?> pieces) { // Unigram: [piece, score] at its id
        max = pieces.size() - 1;
      } else {
        throw new IllegalArgumentException("model.vocab: expected an object or a list");
      }
      for (Object token : added) {
        if (!(token instanceof Map<?, ?> t) || !(t.get("content") instanceof String)) {
          throw new IllegalArgumentException("added_tokens: expected objects with \"id\" and \"content\"");
        }
        max = Math.max(max, id(t.get("id")));
      }
      if (max >= Integer.MAX_VALUE) {
        throw new IllegalArgumentException("token ids up to " + max + " do not fit an int");
      }
      return new Vocabulary(model, added, (int) max + 1);
    }

    private static long id(Object id) {
      if (!(id instanceof BigDecimal n) || n.signum() < 0 || n.stripTrailingZeros().scale() > 0
          || n.compareTo(BigDecimal.valueOf(Integer.MAX_VALUE)) >= 0) {
        throw new IllegalArgumentException("expected token ids to be integers in [0, 2^31 - 1), got " + id);
      }
      return n.longValue();
    }

    /** The id of a special token named by the config; an added token first, as the tokenizers look. */
    OptionalInt idOf(String token, String key, Path dir) {
      if (token == null) {
        return OptionalInt.empty();
      }
      for (Object a : added) {
        Map<?, ?> t = (Map<?, ?>) a;
        if (token.equals(t.get("content"))) {
          return OptionalInt.of((int) id(t.get("id")));
        }
      }
      Object vocab = model.get("vocab");
      if (vocab instanceof Map<?, ?> ids && ids.get(token) != null) {
        return OptionalInt.of((int) id(ids.get(token)));
      }
      if (vocab instanceof List<?> pieces) {
        for (int i = 0; i < pieces.size(); i++) {
          if (pieces.get(i) instanceof List<?> piece && !piece.isEmpty() && token.equals(piece.get(0))) {
            return OptionalInt.of(i);
          }
        }
      }
      throw new IllegalArgumentException(dir + ": " + key + " \"" + token + "\" is not a token of "
          + TOKENIZER_JSON);
    }
  }
}
