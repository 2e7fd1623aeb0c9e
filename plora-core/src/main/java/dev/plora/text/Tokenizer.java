package dev.plora.text;

import java.util.Optional;
import java.util.OptionalInt;

/**
 * Text to token ids and back, with the special tokens and chat template of a model folder.
 * Implementations own native resources: close them.
 */
public interface Tokenizer extends AutoCloseable {

  /**
   * Token ids of a text and, per token, the span {@code [starts[i], ends[i])} of the text it came
   * from, in Java string (UTF-16) indices; a special token added by the tokenizer itself (a BOS
   * the post-processor prepends) has an empty span.
   */
  record Encoding(int[] ids, int[] starts, int[] ends) {}

  /**
   * Encodes a text. Special tokens written in the text (for example a rendered chat template's
   * {@code <|im_start|>}) become their ids; {@code addSpecialTokens} adds what the tokenizer's
   * post-processor adds (Llama's BOS), as Hugging Face's {@code add_special_tokens} does.
   */
  Encoding encode(String text, boolean addSpecialTokens);

  /** The ids of {@link #encode}. */
  default int[] ids(String text, boolean addSpecialTokens) {
    return encode(text, addSpecialTokens).ids();
  }

  /** The text of some ids; special tokens left out when {@code skipSpecialTokens}. */
  String decode(int[] ids, boolean skipSpecialTokens);

  /** Ids run from 0 to vocabSize − 1, added tokens included. */
  int vocabSize();

  OptionalInt bosId();

  OptionalInt eosId();

  OptionalInt padId();

  /** The model's chat template, when its tokenizer_config.json has one. */
  Optional<ChatTemplate> chatTemplate();

  @Override
  void close();
}
