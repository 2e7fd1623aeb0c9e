package dev.plora.data;

import dev.plora.text.ChatMessage;
import dev.plora.text.ChatTemplate;
import dev.plora.text.Tokenizer;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * A tokenizer for tests: one token per character of printable ASCII and newline, the special
 * tokens below written in a text becoming their ids, and BOS prepended with special tokens (a
 * Llama-like post-processor). Ids: 0 pad, 1 BOS, 2 EOS, 3 {@code <|im_start|>}, 4
 * {@code <|im_end|>}, 5 newline, 6 + (c − 32) for ' ' to '~'.
 */
final class CharTokenizer implements Tokenizer {
  static final int PAD = 0, BOS = 1, EOS = 2, IM_START = 3, IM_END = 4, NEWLINE = 5, VOCAB = 6 + 95;
  private static final String[] SPECIAL = {"<pad>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"};

  /** ChatML, as Qwen's and many others' templates render it. */
  static final ChatTemplate CHATML = (messages, generationPrompt) -> {
    StringBuilder s = new StringBuilder();
    for (ChatMessage m : messages) {
      s.append("<|im_start|>").append(m.role()).append('\n').append(m.content()).append("<|im_end|>\n");
    }
    return generationPrompt ? s.append("<|im_start|>assistant\n").toString() : s.toString();
  };

  private final boolean bos;
  private final boolean eos;
  private final ChatTemplate template;

  CharTokenizer(boolean bos, boolean eos, ChatTemplate template) {
    this.bos = bos;
    this.eos = eos;
    this.template = template;
  }

  /** With BOS, EOS and ChatML. */
  CharTokenizer() {
    this(true, true, CHATML);
  }

  /** The id of one character. */
  static int id(char c) {
    if (c == '\n') {
      return NEWLINE;
    }
    if (c < ' ' || c > '~') {
      throw new IllegalArgumentException("CharTokenizer: no token for character " + (int) c);
    }
    return 6 + c - ' ';
  }

  @Override
  public Encoding encode(String text, boolean addSpecialTokens) {
    List<int[]> tokens = new ArrayList<>(); // {id, start, end}
    if (addSpecialTokens && bos) {
      tokens.add(new int[] {BOS, 0, 0});
    }
    for (int i = 0; i < text.length(); ) {
      int special = -1;
      for (int s = 0; s < SPECIAL.length && special < 0; s++) {
        special = text.startsWith(SPECIAL[s], i) ? s : -1;
      }
      int length = special >= 0 ? SPECIAL[special].length() : 1;
      tokens.add(new int[] {special >= 0 ? special : id(text.charAt(i)), i, i + length});
      i += length;
    }
    int n = tokens.size();
    int[] ids = new int[n], starts = new int[n], ends = new int[n];
    for (int t = 0; t < n; t++) {
      ids[t] = tokens.get(t)[0];
      starts[t] = tokens.get(t)[1];
      ends[t] = tokens.get(t)[2];
    }
    return new Encoding(ids, starts, ends);
  }

  @Override
  public String decode(int[] ids, boolean skipSpecialTokens) {
    StringBuilder s = new StringBuilder();
    for (int id : ids) {
      if (id < NEWLINE) {
        s.append(skipSpecialTokens ? "" : SPECIAL[id]);
      } else {
        s.append(id == NEWLINE ? '\n' : (char) (id - 6 + ' '));
      }
    }
    return s.toString();
  }

  @Override
  public int vocabSize() {
    return VOCAB;
  }

  @Override
  public OptionalInt bosId() {
    return bos ? OptionalInt.of(BOS) : OptionalInt.empty();
  }

  @Override
  public OptionalInt eosId() {
    return eos ? OptionalInt.of(EOS) : OptionalInt.empty();
  }

  @Override
  public OptionalInt padId() {
    return OptionalInt.of(PAD);
  }

  @Override
  public Optional<ChatTemplate> chatTemplate() {
    return Optional.ofNullable(template);
  }

  @Override
  public void close() {}
}
