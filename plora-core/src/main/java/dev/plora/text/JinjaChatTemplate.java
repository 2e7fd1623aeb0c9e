package dev.plora.text;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.el.JinjavaInterpreterResolver;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import com.hubspot.jinjava.objects.date.StrftimeFormatter;
import java.time.ZonedDateTime;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.stream.Collectors;
import jinjava.javax.el.CompositeELResolver;

/**
 * A Hugging Face chat template (Jinja) rendered as {@code apply_chat_template(tokenize=False)}
 * renders it: Python jinja2 with {@code trim_blocks} and {@code lstrip_blocks}, the variables
 * {@code messages}, {@code add_generation_prompt}, {@code bos_token} and {@code eos_token}, and the
 * functions {@code raise_exception(message)} and {@code strftime_now(format)}.
 *
 * <p>Rendered with Jinjava, configured and extended where it differs from jinja2: Python's string
 * methods ({@link PyStringMethods}), {@code [::-1]}, and the trailing newline jinja2 drops from the
 * source, not the output. docs/text.md lists what templates can use.
 */
public final class JinjaChatTemplate implements ChatTemplate {
  private static final Jinjava JINJAVA = jinjava();

  private final String source;
  private final Map<String, Object> specialTokens = new HashMap<>();

  /**
   * A template of {@code source}, with the model's BOS and EOS token texts (either may be null:
   * the template then sees it undefined, as in Hugging Face).
   */
  public JinjaChatTemplate(String source, String bosToken, String eosToken) {
    Objects.requireNonNull(source, "source");
    this.source = jinja2Source(source);
    if (bosToken != null) {
      specialTokens.put("bos_token", bosToken);
    }
    if (eosToken != null) {
      specialTokens.put("eos_token", eosToken);
    }
  }

  /** The template text as rendered (newlines normalized, one trailing newline dropped). */
  public String source() {
    return source;
  }

  @Override
  public String render(List<ChatMessage> messages, boolean addGenerationPrompt) {
    Objects.requireNonNull(messages, "messages");
    List<Map<String, Object>> turns = new ArrayList<>(messages.size());
    for (ChatMessage m : messages) {
      Map<String, Object> turn = new LinkedHashMap<>();
      turn.put("role", m.role());
      turn.put("content", m.content());
      turns.add(turn);
    }
    Map<String, Object> context = new HashMap<>(specialTokens);
    context.put("messages", turns);
    context.put("add_generation_prompt", addGenerationPrompt);
    context.put("strftime_now", true); // defined, as in Hugging Face (Llama 3 templates test it)
    RenderResult result = JINJAVA.renderForResult(source, context);
    List<TemplateError> fatal = result.getErrors().stream()
        .filter(e -> e.getSeverity() == TemplateError.ErrorType.FATAL).toList();
    if (!fatal.isEmpty()) {
      throw new IllegalArgumentException(describe(fatal));
    }
    return result.getOutput();
  }

  /** The template's own message when it raised one, else Jinjava's errors with their lines. */
  private static String describe(List<TemplateError> errors) {
    for (TemplateError e : errors) {
      for (Throwable t = e.getException(); t != null; t = t.getCause()) {
        if (t instanceof Raised raised) {
          return "chat template: " + raised.getMessage();
        }
      }
    }
    return "chat template: " + errors.stream()
        .map(e -> "line " + e.getLineno() + ": " + e.getMessage())
        .collect(Collectors.joining("; "));
  }

  /**
   * jinja2's lexer reads any newline as "\n" and drops one trailing newline of the source
   * (keep_trailing_newline=False); Jinjava's option would drop it from the output instead, which
   * loses a generation prompt's final "\n". Jinjava cannot parse the step slice {@code [::-1]};
   * templates use it only to walk messages backwards, which {@code |reverse} does.
   */
  static String jinja2Source(String source) {
    String s = source.replace("\r\n", "\n").replace('\r', '\n');
    if (s.endsWith("\n")) {
      s = s.substring(0, s.length() - 1);
    }
    return parenthesizeNamedArguments(s.replace("[::-1]", "|reverse"));
  }

  /**
   * Jinjava binds a named argument to the first operand only ({@code namespace(i=n - 1)} becomes
   * {@code namespace(i=n) - 1}); jinja2 takes the whole expression, so each value is parenthesized:
   * {@code namespace(i=(n - 1))}. Only inside tags, outside string literals, after "(" or ",".
   */
  static String parenthesizeNamedArguments(String s) {
    StringBuilder out = new StringBuilder(s.length() + 16);
    int i = 0;
    while (i < s.length()) {
      boolean tag = s.startsWith("{{", i) || s.startsWith("{%", i);
      if (!tag) {
        int comment = s.startsWith("{#", i) ? s.indexOf("#}", i) : -1;
        int next = comment >= 0 ? comment + 2 : i + 1;
        out.append(s, i, next);
        i = next;
        continue;
      }
      out.append(s, i, i + 2);
      i = tagBody(s, i + 2, out);
    }
    return out.toString();
  }

  /** Copies one tag's body from {@code i} to its closing "}}" or "%}"; returns the index after it. */
  private static int tagBody(String s, int i, StringBuilder out) {
    StringBuilder brackets = new StringBuilder(); // open brackets, innermost last
    List<Integer> wrapped = new ArrayList<>(); // bracket depths of the values opened with "("
    char quote = 0;
    for (; i < s.length(); i++) {
      char c = s.charAt(i);
      if (quote != 0) {
        out.append(c);
        if (c == '\\' && i + 1 < s.length()) {
          out.append(s.charAt(++i));
        } else if (c == quote) {
          quote = 0;
        }
        continue;
      }
      int depth = brackets.length();
      if (depth == 0 && (s.startsWith("}}", i) || s.startsWith("%}", i))) {
        out.append(s, i, i + 2);
        return i + 2;
      }
      if ((c == ',' || c == ')') && !wrapped.isEmpty() && wrapped.get(wrapped.size() - 1) == depth) {
        out.append(')');
        wrapped.remove(wrapped.size() - 1);
      }
      out.append(c);
      switch (c) {
        case '\'', '"' -> quote = c;
        case '(', '[', '{' -> brackets.append(c);
        case ')', ']', '}' -> {
          if (depth > 0) {
            brackets.setLength(depth - 1);
          }
        }
        case '=' -> {
          if (depth > 0 && brackets.charAt(depth - 1) == '(' && isNamedArgument(s, i)) {
            out.append('(');
            wrapped.add(depth);
          }
        }
        default -> { }
      }
    }
    return i;
  }

  /** An "=" at {@code at} that follows "( name" or ", name" and is not part of ==, !=, <=, >=. */
  private static boolean isNamedArgument(String s, int at) {
    if (at + 1 < s.length() && s.charAt(at + 1) == '=') {
      return false;
    }
    int j = at - 1;
    while (j >= 0 && s.charAt(j) == ' ') {
      j--;
    }
    int end = j;
    while (j >= 0 && (Character.isLetterOrDigit(s.charAt(j)) || s.charAt(j) == '_')) {
      j--;
    }
    if (j == end) {
      return false;
    }
    while (j >= 0 && Character.isWhitespace(s.charAt(j))) {
      j--;
    }
    return j >= 0 && (s.charAt(j) == '(' || s.charAt(j) == ',');
  }

  private static Jinjava jinjava() {
    CompositeELResolver resolver = new CompositeELResolver();
    resolver.add(new PyStringMethods());
    resolver.add(JinjavaInterpreterResolver.DEFAULT_RESOLVER_READ_ONLY);
    JinjavaConfig config = JinjavaConfig.newBuilder()
        .withTrimBlocks(true)
        .withLstripBlocks(true)
        .withKeepTrailingNewline(true)
        .withElResolver(resolver)
        .withLegacyOverrides(LegacyOverrides.newBuilder()
            .withUseNaturalOperatorPrecedence(true)
            .withParseWhitespaceControlStrictly(true)
            .withUseTrimmingForNotesAndExpressions(true)
            .withKeepNullableLoopValues(true)
            .build())
        .build();
    Jinjava jinjava = new Jinjava(config);
    try {
      jinjava.registerFunction(new ELFunctionDefinition("", "raise_exception",
          JinjaChatTemplate.class.getDeclaredMethod("raiseException", Object.class)));
      jinjava.registerFunction(new ELFunctionDefinition("", "strftime_now",
          JinjaChatTemplate.class.getDeclaredMethod("strftimeNow", String.class)));
    } catch (NoSuchMethodException e) {
      throw new AssertionError(e);
    }
    return jinjava;
  }

  /** {@code raise_exception(message)}: ends the rendering with the template's message. */
  public static Object raiseException(Object message) {
    throw new Raised(String.valueOf(message));
  }

  /** What raise_exception throws inside Jinjava, which wraps it. */
  private static final class Raised extends RuntimeException {
    Raised(String message) {
      super(message, null, false, false);
    }
  }

  /** {@code strftime_now(format)}: the local time in a Python strftime format. */
  public static String strftimeNow(String format) {
    return StrftimeFormatter.format(ZonedDateTime.now(), format);
  }
}
