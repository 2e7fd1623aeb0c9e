package dev.plora.testing;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;

/**
 * The tiny tokenizer of the tests (resources text/tiny-tokenizer/, made by make_tiny_tokenizer.py
 * there): a byte-level BPE whose ids 0..255 are the bytes themselves, 44 merges (256..299) and five
 * special tokens; its post-processor prepends BOS, its tokenizer_config.json has a ChatML template.
 * {@link #writeTo} puts it into a model folder beside a test checkpoint.
 */
public final class TestTokenizers {
  private TestTokenizers() {}

  public static final String RESOURCE_DIR = "/text/tiny-tokenizer/";
  public static final List<String> FILES = List.of("tokenizer.json", "tokenizer_config.json");

  /** Ids run 0..VOCAB_SIZE-1; a model for this tokenizer needs at least this many embeddings. */
  public static final int VOCAB_SIZE = 305;
  /** {@code <s>}: bos_token, prepended by the post-processor. */
  public static final int BOS = 300;
  /** {@code </s>}: a special token that is not the EOS here. */
  public static final int END_OF_TEXT = 301;
  /** {@code <pad>}: pad_token. */
  public static final int PAD = 302;
  /** {@code <|im_start|>}. */
  public static final int IM_START = 303;
  /** {@code <|im_end|>}: eos_token, as in ChatML models. */
  public static final int IM_END = 304;

  /** Copies tokenizer.json and tokenizer_config.json into {@code dir} (created if needed). */
  public static Path writeTo(Path dir) throws IOException {
    Files.createDirectories(dir);
    for (String name : FILES) {
      try (InputStream in = TestTokenizers.class.getResourceAsStream(RESOURCE_DIR + name)) {
        if (in == null) {
          throw new IOException("test resource " + RESOURCE_DIR + name + " is missing");
        }
        Files.copy(in, dir.resolve(name), StandardCopyOption.REPLACE_EXISTING);
      }
    }
    return dir;
  }
}
